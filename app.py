"""otc dashboard entry point: ``streamlit run app.py`` (or ``make run``).

Each page draws the shared sidebar (privacy mode) itself through ``ui.common.page_settings()``.
"""

import streamlit as st

from ui.common import PAGE_ICON, PAGE_TITLE

st.set_page_config(page_title=PAGE_TITLE, page_icon=PAGE_ICON, layout="wide")

pages = [
    st.Page("pages/lookup.py", title="Lookup", icon=":material/search:", url_path="lookup", default=True),
    st.Page("pages/bulk.py", title="Bulk", icon=":material/table_view:", url_path="bulk"),
    st.Page("pages/sources.py", title="Sources", icon=":material/satellite_alt:", url_path="sources"),
]
st.navigation(pages).run()
