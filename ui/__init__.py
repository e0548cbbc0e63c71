"""Streamlit-side helpers shared by the pages: translations, the sidebar, charts."""
