"""Store a notebook's progress bars the way Jupyter shows them: one line per bar, its final state.

papermill records every refresh of a text progress bar as a separate stream output ("\r" rewrites,
cursor-up escapes of nested bars): thousands of outputs for one sampling loop. This merges the
consecutive stream outputs of each cell and keeps, for every line, what is left after its last "\r",
which is what a terminal or Jupyter displays. Nothing else in the notebook changes.

    python tools/tidy_outputs.py NOTEBOOK.ipynb      (rewrites the file in place)
"""
import json
import re
import sys
from pathlib import Path

CONTROL = re.compile(r"(\r|\n|\x1b\[[0-9;]*[A-Za-z])")


def final_text(text):
    """What a terminal shows after `text`: '\r' returns to the line start, '\n' goes down a line, the
    escape ESC[A (nested progress bars) goes up one; a write at the start of a line replaces it."""
    lines, row, at_start = [""], 0, True
    for token in CONTROL.split(text):
        if token in ("\r", "\n"):
            at_start = True
            if token == "\n":
                row += 1
                lines += [""] * (row + 1 - len(lines))
        elif token.startswith("\x1b["):
            row = max(0, row - 1) if token.endswith("A") else row
        elif token:
            lines[row] = token if at_start else lines[row] + token
            at_start = False
    kept = [line.rstrip() for line in lines if line.strip()]
    return "".join(line + "\n" for line in kept)


def tidy(outputs):
    merged = []
    for out in outputs:
        if out["output_type"] == "stream" and merged and merged[-1]["output_type"] == "stream" \
                and merged[-1]["name"] == out["name"]:
            merged[-1]["text"] += "".join(out["text"])
        else:
            merged.append(dict(out, text="".join(out["text"])) if out["output_type"] == "stream" else out)
    for out in merged:
        if out["output_type"] == "stream":
            out["text"] = final_text(out["text"]).splitlines(keepends=True)
    return [out for out in merged if out["output_type"] != "stream" or "".join(out["text"]).strip()]


def main(path):
    nb = json.loads(Path(path).read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"] = tidy(cell["outputs"])
    Path(path).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
