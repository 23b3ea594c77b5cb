"""`mailer init`: a new newsletter folder, its settings written from a few answers."""

from mailer.scaffold.create import create_newsletter
from mailer.scaffold.providers import PROVIDER_NAMES, PROVIDERS, Provider
from mailer.scaffold.settings import Answers, answer_problem, settings_text

__all__ = [
    "PROVIDERS",
    "PROVIDER_NAMES",
    "Answers",
    "Provider",
    "answer_problem",
    "create_newsletter",
    "settings_text",
]
