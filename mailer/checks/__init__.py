"""The checks behind `mailer check`, one module each; mailer.check is the public API."""
