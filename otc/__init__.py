"""otc — Open Threat Correlation: enrich IPs, domains, URLs and hashes and explain one verdict.

The library never imports Streamlit; the dashboard (``app.py``, ``pages/``) and the CLI (``python -m otc``)
are thin callers of :mod:`otc.indicators`, :mod:`otc.engine` and :mod:`otc.bulk`.
"""

__version__ = "0.1.0"
