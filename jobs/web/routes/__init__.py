"""The web app's routes, one router per kind of page (each page with its JSON twin under /api)."""
