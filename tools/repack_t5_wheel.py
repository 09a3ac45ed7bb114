"""Rebuild the `t5` wheel so that it depends on `seqio` and `tensorflow-datasets`.

`t5==0.9.4` declares `seqio-nightly` and `tfds-nightly`. Those distributions install the
same modules (`seqio`, `tensorflow_datasets`) as the stable `seqio` and
`tensorflow-datasets` that the rest of the stack needs, and whichever installs last
silently overwrites the other. This script downloads the published wheel, renames those
two requirements to the stable distributions, gives it the local version `+flantune` so
nobody mistakes it for the original, and rewrites RECORD so `pip` accepts it.
No module of t5 is changed.

Usage: python tools/repack_t5_wheel.py OUT_DIR   (prints the path of the new wheel)
"""

import base64
import hashlib
import pathlib
import re
import subprocess
import sys
import tempfile
import zipfile

T5_VERSION = "0.9.4"
LOCAL_LABEL = "flantune"
RENAMED_REQUIREMENTS = {"seqio-nightly": "seqio", "tfds-nightly": "tensorflow-datasets"}


def _record_hash(data: bytes) -> str:
  digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
  return "sha256=" + digest.decode()


def _rewrite_metadata(text: str) -> str:
  text = re.sub(rf"^Version: {re.escape(T5_VERSION)}$",
                f"Version: {T5_VERSION}+{LOCAL_LABEL}", text, flags=re.M)
  for old, new in RENAMED_REQUIREMENTS.items():
    text, count = re.subn(rf"^Requires-Dist: {re.escape(old)}$",
                          f"Requires-Dist: {new}", text, flags=re.M)
    if count != 1:
      raise SystemExit(f"t5 {T5_VERSION} METADATA has no plain requirement {old!r}")
  return text


def repack(source: pathlib.Path, out_dir: pathlib.Path) -> pathlib.Path:
  old_info = f"t5-{T5_VERSION}.dist-info/"
  new_info = f"t5-{T5_VERSION}+{LOCAL_LABEL}.dist-info/"
  target = out_dir / f"t5-{T5_VERSION}+{LOCAL_LABEL}-py3-none-any.whl"
  with zipfile.ZipFile(source) as src:
    files = {name: src.read(name) for name in src.namelist() if not name.endswith("/")}
  renamed = {name.replace(old_info, new_info): data for name, data in files.items()}
  metadata = new_info + "METADATA"
  renamed[metadata] = _rewrite_metadata(renamed[metadata].decode()).encode()
  record = new_info + "RECORD"
  lines = [f"{name},{_record_hash(data)},{len(data)}"
           for name, data in sorted(renamed.items()) if name != record]
  renamed[record] = ("\n".join(lines + [f"{record},,"]) + "\n").encode()
  out_dir.mkdir(parents=True, exist_ok=True)
  with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
    for name, data in sorted(renamed.items()):
      dst.writestr(name, data)
  return target


def main(argv):
  if len(argv) != 2:
    raise SystemExit(__doc__)
  out_dir = pathlib.Path(argv[1])
  existing = out_dir / f"t5-{T5_VERSION}+{LOCAL_LABEL}-py3-none-any.whl"
  if existing.exists():
    print(existing)
    return
  with tempfile.TemporaryDirectory() as tmp:
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "-d", tmp, f"t5=={T5_VERSION}"], check=True)
    (source,) = pathlib.Path(tmp).glob("t5-*.whl")
    print(repack(source, out_dir))


if __name__ == "__main__":
  main(sys.argv)
