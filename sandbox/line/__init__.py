"""The LINE Messaging API stand-in: the endpoints the server calls, signed webhooks as
residents' events, and a web chat where a tester plays residents."""
