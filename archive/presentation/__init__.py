"""Presentation: the terminal views, the HTML report, the live web page and the plots.

Everything here reads the store through `archive.store.ReadStore` and its frozen records only (no
SQL, no writes), and renders the same documents that the `--json` commands print:

- tree.py: the lineage tree (`clade tree`) and score formatting;
- views.py: runs, one node, diffs, best (`clade runs`, `show`, `diff`, `best`);
- status.py: the status panel (`clade status`, and the progress of `clade run`);
- report.py and templates/: the self-contained HTML report (`clade report`);
- server.py: the live page (`clade ui`), the report's document over HTTP;
- plots.py: score over time (`clade plot`);
- summary.py: the lines `clade run` prints when a run ends.
"""
