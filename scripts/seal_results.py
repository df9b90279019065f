"""Record content hashes for result stages written before the runner recorded them (`mnistmem.integrity`).

    .venv/bin/python scripts/seal_results.py data/results

For every stage of every manifest under the folder that has no hashes yet: the SHA-256 of each file in its
folder, a note saying the hashes were recorded afterwards, and the record's seal, written into the stage's
`stage.json` and the manifest. Run once (2026-12-01) on the committed results, which git had kept
unaltered; stages the runner writes from now on carry their hashes from the start.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

from mnistmem import integrity
from mnistmem.atomic import write_json
from mnistmem.results import SCRATCH, STAGE_FILE


def main(root: str) -> int:
    sealed = 0
    for manifest_path in sorted(Path(root).glob("*/*/manifest.json")):
        manifest = json.loads(manifest_path.read_text())
        for name, record in manifest["stages"].items():
            if "record_sha256" in record:
                continue
            folder = manifest_path.parent / record["folder"]
            body = {k: v for k, v in record.items() if k != "folder"}
            body["files"] = integrity.hash_folder(folder, skip=(STAGE_FILE, SCRATCH))
            body["hashes_recorded"] = (
                f"afterwards, from the committed files, by scripts/seal_results.py on {date.today()}"
            )
            body = integrity.seal(body)
            write_json(folder / STAGE_FILE, body)
            manifest["stages"][name] = {**body, "folder": record["folder"]}
            sealed += 1
        write_json(manifest_path, manifest)
    print(f"sealed {sealed} stage records under {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "data/results"))
