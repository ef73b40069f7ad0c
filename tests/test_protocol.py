"""byoklib.protocol: the wire facts and the few helpers that read or write them."""
from datetime import datetime, timedelta, timezone

import pytest

from byoklib import protocol


def test_sizes_agree_with_each_other():
    assert protocol.SEALED_NONCE_BYTES == 28
    assert protocol.KEY_MATERIAL_BITS == (128, 192, 256)
    assert protocol.WRAPPED_KEY_BYTES == 512


def test_token_policy_bounds_are_inclusive():
    assert 300 in protocol.TOKEN_EXPIRATION and 86400 in protocol.TOKEN_EXPIRATION
    assert 299 not in protocol.TOKEN_EXPIRATION and 86401 not in protocol.TOKEN_EXPIRATION
    assert protocol.TOKEN_EXPIRATION.default == 600
    assert (protocol.TOKEN_RETRIEVALS.low, protocol.TOKEN_RETRIEVALS.high,
            protocol.TOKEN_RETRIEVALS.default) == (1, 500, 1)


@pytest.mark.parametrize("value, token", [("Bearer abc", "abc"), ("bearer  abc ", "abc"),
                                          ("abc", "abc"), ("BEARER x.y", "x.y"), ("", "")])
def test_bearer_token_strips_the_scheme_in_any_case(value, token):
    assert protocol.bearer_token(value) == token


def test_authorization_adds_the_scheme_once():
    assert protocol.authorization("abc") == "Bearer abc"
    assert protocol.authorization("Bearer abc") == "Bearer abc"


def test_rfc3339_is_utc_whole_seconds_and_round_trips():
    moment = datetime(2030, 1, 31, 14, 0, 0, 500000, timezone(timedelta(hours=2)))
    assert protocol.rfc3339(moment) == "2030-01-31T12:00:00Z"
    assert protocol.rfc3339(None) is None
    assert protocol.parse_rfc3339("2030-01-31T12:00:00Z") == moment.replace(microsecond=0)


@pytest.mark.parametrize("text", ["2030-01-31 12:00:00Z", "2030-01-31T12:00:00", "2030-W05-4",
                                  "2030-01-31T12:00:00+0000", "2030-13-01T00:00:00Z"])
def test_parse_rfc3339_refuses_other_forms(text):
    with pytest.raises(ValueError):
        protocol.parse_rfc3339(text)


def test_action_type_names_the_action():
    assert protocol.action_type("wrap") == "application/vnd.ibm.kms.key_action_wrap+json"
