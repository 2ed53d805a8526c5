"""Stand-ins for the LINE Messaging API and the LINE WORKS API, for the demo and the tests.

They validate what the server sends the way the platforms do, and let a tester play residents
and crews in a browser. Production code never imports this package.
"""
