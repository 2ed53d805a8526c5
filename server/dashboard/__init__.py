"""The operators' live page: static files, and the server-sent-event hub that feeds it."""
