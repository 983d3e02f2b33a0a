import pytest

from backend.core.exceptions import SettingsError
from backend.core.settings import ProjectSettings, ServiceSettings
from strategies import STRATEGY_NAMES


def test_defaults_come_from_the_environment_and_extra_params_override_them():
    env = {"AL_STRATEGY": "entropy", "AL_EPOCHS": "2"}
    assert ProjectSettings.parse(None, env).strategy == "entropy"
    settings = ProjectSettings.parse({"strategy": "least_confidence", "learning_rate": 1e-4}, env)
    assert (settings.strategy, settings.epochs, settings.learning_rate) == ("least_confidence", 2, 1e-4)


def test_extra_params_may_arrive_as_json_text():
    assert ProjectSettings.parse('{"query_batch_size": 32}', {}).query_batch_size == 32
    assert ProjectSettings.parse("", {}) == ProjectSettings()


def test_unknown_strategy_names_every_valid_one():
    with pytest.raises(SettingsError) as error:
        ProjectSettings.parse({"strategy": "magic"}, {})
    message = str(error.value)
    assert "'magic'" in message and all(name in message for name in STRATEGY_NAMES)


@pytest.mark.parametrize(
    "params, fragment",
    [
        ({"epochs": 0}, "epochs must be between 1 and 50"),
        ({"epochs": 10**9}, "epochs must be between 1 and 50"),
        ({"max_length": 100_000}, "max_length must be between 8 and 512"),
        ({"committee_size": 500}, "committee_size must be between 2 and 20"),
        ({"top_k": 5}, "top_k must be between 10 and 100000"),
        ({"seed": -1}, "seed must be between 0"),
        ({"learning_rate": float("nan")}, "learning_rate must be between"),
        ({"model_name": "x" * 500}, "at most 200 characters"),
        ({"epochs": "three"}, "epochs (from extra_params) must be an integer"),
        ({"epochs": 2.5}, "must be an integer"),
        ({"learning_rate": 3}, "learning_rate must be between 1e-07 and 0.1"),
        ({"model_mode": "lora"}, "choose one of: finetune, head"),
        ({"device": "tpu"}, "choose one of: auto, cpu, cuda"),
        ({"min_labels": 1}, "min_labels must be between 2 and 10000"),
        ({"bogus": 1}, "unknown extra param 'bogus'; valid params:"),
        ("[1, 2]", "must be a JSON object"),
        ("{not json", "not valid JSON"),
    ],
)
def test_invalid_values_say_what_is_wrong(params, fragment):
    with pytest.raises(SettingsError) as error:
        ProjectSettings.parse(params, {})
    assert fragment in str(error.value)


def test_bad_environment_default_names_the_variable():
    with pytest.raises(SettingsError, match="AL_EPOCHS"):
        ProjectSettings.parse(None, {"AL_EPOCHS": "many"})


def test_service_settings_follow_label_studio_names(tmp_path):
    service = ServiceSettings.from_env(
        {
            "LABEL_STUDIO_URL": "http://ls:8080/",
            "LABEL_STUDIO_API_KEY": "token",
            "MODEL_DIR": str(tmp_path),
            "REDIS_URL": "redis://r:6379/2",
            "BASIC_AUTH_USER": "u",
            "BASIC_AUTH_PASS": "p",
        }
    )
    assert service.label_studio_url == "http://ls:8080"
    assert (service.model_dir, service.redis_url, service.basic_auth_user) == (tmp_path, "redis://r:6379/2", "u")


def test_half_configured_basic_auth_is_refused():
    with pytest.raises(SettingsError, match="BASIC_AUTH_USER and BASIC_AUTH_PASS"):
        ServiceSettings.from_env({"BASIC_AUTH_USER": "only-user"})


def test_every_default_sits_inside_its_documented_range():
    from backend.core.settings import PROJECT_RANGES

    defaults = ProjectSettings()
    for name, (low, high) in PROJECT_RANGES.items():
        assert low <= getattr(defaults, name) <= high, name


@pytest.mark.parametrize(
    "env, fragment",
    [
        ({"LABEL_STUDIO_URL": "http://ls"}, "set both LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY"),
        ({"LABEL_STUDIO_API_KEY": "key"}, "set both LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY"),
        ({"AL_URL_SECRET": "short"}, "AL_URL_SECRET must be at least 16"),
        ({"AL_URL_SECRET": "has/a/slash/in/it/0123"}, "AL_URL_SECRET must be at least 16"),
        ({"AL_MAX_BODY_MB": "0"}, "AL_MAX_BODY_MB must be between 1 and 1024"),
        ({"AL_MAX_PREDICT_TASKS": "1000000"}, "AL_MAX_PREDICT_TASKS must be between 1 and 100000"),
        ({"AL_JOB_TIMEOUT": "5"}, "AL_JOB_TIMEOUT must be between 10"),
        ({"AL_RESYNC_S": "59"}, "AL_RESYNC_S must be between 60 and 604800"),
        ({"AL_SCORE_CHUNK_TASKS": "99"}, "AL_SCORE_CHUNK_TASKS must be between 100 and 1000000"),
        ({"AL_SCORE_CHUNK_TASKS": "1000001"}, "AL_SCORE_CHUNK_TASKS must be between 100 and 1000000"),
    ],
)
def test_service_settings_are_bounded_and_take_url_and_key_together(env, fragment):
    with pytest.raises(SettingsError) as error:
        ServiceSettings.from_env(env)
    assert fragment in str(error.value)
