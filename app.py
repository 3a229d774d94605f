"""otc dashboard entry point: ``streamlit run app.py`` (or ``make run``)."""

import streamlit as st

st.set_page_config(page_title="otc — Open Threat Correlation", page_icon="🛡️", layout="wide")

pages = [
    st.Page("pages/lookup.py", title="Lookup", icon="🔎", url_path="lookup", default=True),
    st.Page("pages/bulk.py", title="Bulk", icon="📄", url_path="bulk"),
    st.Page("pages/sources.py", title="Sources", icon="🛰️", url_path="sources"),
]
st.navigation(pages).run()
