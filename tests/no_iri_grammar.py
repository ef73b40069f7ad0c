"""Loaded first by `make test` (`-p tests.no_iri_grammar`), before nbval imports nbformat.

jsonschema checks the "iri" format only when rfc3987-syntax (a dependency of
jupyter-events, so of JupyterLab) is importable, and importing it compiles a Lark grammar,
the costliest import of each of the suite's pytest processes and JupyterLab servers. No
schema here (the notebook format's, our OpenAPI document's) uses "iri", so the suite's
processes hide the package; everything else in jsonschema is unchanged."""
import sys

sys.modules.setdefault("rfc3987_syntax", None)   # `import rfc3987_syntax` -> ImportError
