"""Page-side helpers of the dashboard (these may import streamlit; ``otc/`` never does)."""
