"""kuma-cp configuration: models, loading (defaults -> YAML file -> KUMA_* env), validation.

    config = load_config("kuma-cp.conf.yml")        # ConfigError names every bad key
    config.store.postgres.db_name                     # typed, snake_case attributes
    config.to_json_dict()                             # GET /config (password masked)
    config.catalog()                                  # GET /catalog

See docs/configuration.md for every key, its default and its environment variable.
"""

from kuma.config.duration import format_duration, parse_duration
from kuma.config.errors import ConfigError, ConfigProblem
from kuma.config.loader import defaults_yaml, load_config, parse_env_value
from kuma.config.model import SANITIZED_VALUE, KumaCpConfig, SettingInfo, iter_settings
from kuma.config.validate import validate_config

__all__ = [
    "SANITIZED_VALUE",
    "ConfigError",
    "ConfigProblem",
    "KumaCpConfig",
    "SettingInfo",
    "defaults_yaml",
    "format_duration",
    "iter_settings",
    "load_config",
    "parse_duration",
    "parse_env_value",
    "validate_config",
]
