import pytest

from conftest import write_jsonl
from flan_tune.errors import SourceError
from flan_tune.tasks import CsvSource, GeneratorSource, JsonlSource


def test_jsonl_field_mapping_with_dotted_columns(tmp_path):
  path = write_jsonl(tmp_path / "a.jsonl",
                     [{"meta": {"label": 1}, "body": "hi", "tags": ["x", "y"]}])
  source = JsonlSource({"train": path}, fields={"text": "body", "label": "meta.label",
                                                "tags": "tags"})
  (record,) = source.records("train")
  assert record == {"text": "hi", "label": "1", "tags": ["x", "y"], "_origin": f"{path}:1"}
  assert source.num_input_examples("train") == 1


def test_malformed_jsonl_line_names_file_and_line(tmp_path):
  path = write_jsonl(tmp_path / "bad.jsonl", [{"a": "1"}, "", '{"a": "2"', {"a": "3"}])
  with pytest.raises(SourceError, match=r"bad.jsonl:3: invalid JSON"):
    list(JsonlSource({"train": path}).records("train"))


def test_missing_mapped_column_names_file_and_line(tmp_path):
  path = write_jsonl(tmp_path / "m.jsonl", [{"a": "1", "b": "x"}, {"a": "2"}])
  with pytest.raises(SourceError, match=r"m.jsonl:2: no column 'b' \(mapped to field 'target'\)"):
    list(JsonlSource({"train": path}, fields={"source": "a", "target": "b"}).records("train"))


def test_json_array_file_is_read_with_indexed_origins(tmp_path):
  path = tmp_path / "alpaca_data.json"
  path.write_text('  [{"a": "1"},\n {"a": "2"}]')
  assert [r["_origin"] for r in JsonlSource({"train": str(path)}).records("train")] == [
      f"{path}[0]", f"{path}[1]"]
  path.write_text('[{"a": "1"},\n {"a": }]')
  with pytest.raises(SourceError, match=r"alpaca_data.json:2: invalid JSON"):
    list(JsonlSource({"train": str(path)}).records("train"))


def test_records_with_different_fields(tmp_path):
  path = write_jsonl(tmp_path / "d.jsonl", [{"a": "1"}, {"a": "2", "b": "3"}])
  with pytest.raises(SourceError, match=r"d.jsonl:2: fields differ .*extra \['b'\]"):
    list(JsonlSource({"train": path}).records("train"))


def test_null_and_nested_values(tmp_path):
  path = write_jsonl(tmp_path / "n.jsonl", [{"a": None}])
  with pytest.raises(SourceError, match=r"n.jsonl:1: field 'a' is null"):
    list(JsonlSource({"train": path}).records("train"))


def test_missing_file(tmp_path):
  with pytest.raises(SourceError, match=r"nope.jsonl: cannot open"):
    JsonlSource({"train": str(tmp_path / "nope.jsonl")}).records("train")


def test_csv_and_tsv(tmp_path):
  (tmp_path / "a.csv").write_text("question,answer\nwhat?,this\n\"a, b\",c\n")
  (tmp_path / "a.tsv").write_text("question\tanswer\nwhat?\tthis\n")
  csv_records = CsvSource({"train": str(tmp_path / "a.csv")}).records("train")
  assert [r["question"] for r in csv_records] == ["what?", "a, b"]
  tsv = CsvSource({"train": str(tmp_path / "a.tsv")}, fields={"q": "question"})
  assert tsv.records("train")[0] == {"q": "what?", "_origin": f"{tmp_path}/a.tsv:2"}


def test_csv_missing_column_and_ragged_row(tmp_path):
  (tmp_path / "a.csv").write_text("question,answer\nwhat?,this,extra\n")
  with pytest.raises(SourceError, match=r"a.csv:1: no column 'label'"):
    CsvSource({"train": str(tmp_path / "a.csv")}, fields={"label": "label"}).records("train")
  with pytest.raises(SourceError, match=r"a.csv:2: row has 3 cells where the header has 2"):
    CsvSource({"train": str(tmp_path / "a.csv")}).records("train")


def test_generator_source_shards_and_shuffles_deterministically():
  import seqio

  def rows(split):
    for i in range(10):
      yield {"x": f"{split}-{i}", "n": i}

  source = GeneratorSource(rows, splits=("train",))
  assert source.records("train")[2]["_origin"].endswith("rows('train')[2]")
  shard = [e["x"] for e in source.get_dataset("train", shuffle=False,
                                              shard_info=seqio.ShardInfo(1, 3)).as_numpy_iterator()]
  assert shard == [b"train-1", b"train-4", b"train-7"]
  first = list(source.get_dataset("train", shuffle=True, seed=5).as_numpy_iterator())
  again = list(source.get_dataset("train", shuffle=True, seed=5).as_numpy_iterator())
  assert [e["x"] for e in first] == [e["x"] for e in again]
  with pytest.raises(SourceError, match="has no split 'test'"):
    source.records("test")


def test_jsonl_is_read_by_line_offsets_with_blank_lines_and_no_final_newline(tmp_path):
  path = tmp_path / "a.jsonl"
  path.write_text('{"a": "1"}\n\n   \n{"a": "2"}\r\n{"a": "3"}')
  records = JsonlSource({"train": str(path)}).records("train")
  assert len(records) == 3
  assert [r["a"] for r in records] == ["1", "2", "3"]
  assert [r["_origin"] for r in records] == [f"{path}:1", f"{path}:4", f"{path}:5"]
  assert records[2] == records[-1]


def test_jsonl_gz_reads_a_decompressed_copy_and_names_the_gz_file(tmp_path, monkeypatch):
  import gzip

  monkeypatch.setenv("FLAN_TUNE_CACHE_DIR", str(tmp_path / "cache"))
  path = tmp_path / "a.jsonl.gz"
  with gzip.open(path, "wt") as f:
    f.write('{"a": "1"}\n{"a": 2}\n{"a": \n')
  records = JsonlSource({"train": str(path)}).records("train")
  assert [records[0]["a"], records[1]["a"]] == ["1", "2"]
  with pytest.raises(SourceError, match=rf"{path}:3: invalid JSON"):
    records[2]
  assert len(list((tmp_path / "cache" / "decompressed").iterdir())) == 1


def test_parquet_is_read_by_row_group_with_origins(tmp_path):
  import pyarrow as pa
  import pyarrow.parquet as pq

  from flan_tune.tasks import ParquetSource

  path = str(tmp_path / "a.parquet")
  table = pa.table({"inputs": [f"q{i}" for i in range(25)], "targets": [str(i) for i in range(25)],
                    "meta": [{"source": "x"}] * 25, "unused": list(range(25))})
  pq.write_table(table, path, row_group_size=10)
  source = ParquetSource({"train": [path, path]}, fields={"q": "inputs", "a": "targets",
                                                          "source": "meta.source"})
  records = source.records("train")
  assert source.num_input_examples("train") == len(records) == 50
  assert records[23] == {"q": "q23", "a": "23", "source": "x",
                         "_origin": f"{path}:row group 2, row 3"}
  assert records[30]["q"] == "q5"
  with pytest.raises(SourceError, match=r"a.parquet:row group 0, row 0: no column 'nope'"):
    ParquetSource({"train": path}, fields={"x": "nope"}).records("train")
  with pytest.raises(SourceError, match="cannot read as Parquet"):
    (tmp_path / "bad.parquet").write_text("not parquet")
    ParquetSource({"train": str(tmp_path / "bad.parquet")}).records("train")
