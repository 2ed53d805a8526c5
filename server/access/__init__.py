"""Who may do what through the operator API.

operators.Operator   an operator's role and reach, and the checks every route makes
tokens.Operators     the accounts: create, rotate, revoke, list; authenticate a token
places               which municipality a station, battery or incident belongs to
"""
