"""The read-only web app (FastAPI, server-rendered) and the static HTML report."""
