"""The Streamlit inference viewer, its pure render helpers and its command line."""
