"""mailer: compose an email newsletter from an issue file and send it safely."""

__version__ = "0.1.0"
