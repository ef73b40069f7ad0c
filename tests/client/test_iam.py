"""IAM (byoklib.client.iam) and the client's IAM paths, against a scripted server: the API
key grant, its failures without the key, from_api_key and from_env, a new token on 401."""
import pytest
import scripted_server
from scripted_server import KEY, SECRET, kp_error

from byoklib import KeyProtectError
from byoklib.client import KeyProtectClient, iam_token

scripted, client = scripted_server.scripted, scripted_server.client   # fixtures


def test_iam_token_posts_the_apikey_grant(scripted):
    scripted.reply(200, {"access_token": "eyJ.token", "token_type": "Bearer", "expires_in": 3600})
    assert iam_token(SECRET, url=scripted.url + "/identity/token") == "eyJ.token"
    request = scripted.last
    assert request["method"] == "POST" and request["path"] == "/identity/token"
    assert request["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert request["body"] == (b"grant_type=urn%3Aibm%3Aparams%3Aoauth%3Agrant-type%3Aapikey"
                               b"&apikey=" + SECRET.encode())

def test_iam_failure_is_a_key_protect_error_without_the_key(scripted):
    scripted.reply(400, {"errorCode": "BXNIM0415E",
                         "errorMessage": f"Provided API key could not be found: {SECRET}"})
    with pytest.raises(KeyProtectError) as info:
        iam_token(SECRET, url=scripted.url)
    assert (info.value.status, info.value.code) == (400, "BXNIM0415E")
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)
    assert SECRET not in info.value.error_msg
    scripted.reply(200, {"token_type": "Bearer"})
    with pytest.raises(KeyProtectError, match="access_token"):
        iam_token(SECRET, url=scripted.url)

def test_from_api_key_and_from_env(scripted):
    scripted.reply(200, {"access_token": "from-iam"})
    scripted.reply(200, {"resources": [{"id": "k"}]})
    env = {"KP_URL": scripted.url, "KP_INSTANCE_ID": "inst-env", "IBMCLOUD_API_KEY": SECRET,
           "KP_IAM_URL": scripted.url + "/identity/token", "KP_KEY_RING": "ring-e"}
    with KeyProtectClient.from_env(env) as client:
        client.get_key("k")
    assert scripted.requests[0]["path"] == "/identity/token"
    assert scripted.last["headers"]["authorization"] == "Bearer from-iam"
    assert scripted.last["headers"]["bluemix-instance"] == "inst-env"
    assert scripted.last["headers"]["x-kms-key-ring"] == "ring-e"
    assert SECRET not in repr(client)

def test_from_env_prefers_a_bearer_token_and_explains_what_is_missing(scripted):
    scripted.reply(200, {"resources": [{"id": "k"}]})
    env = {"KP_URL": scripted.url, "KP_INSTANCE_ID": "i", "KP_TOKEN": "tok", "KP_API_KEY": SECRET}
    with KeyProtectClient.from_env(env) as client:
        client.get_key("k")
    assert len(scripted.requests) == 1  # no IAM call
    assert scripted.last["headers"]["authorization"] == "Bearer tok"
    with pytest.raises(ValueError, match="KP_INSTANCE_ID"):
        KeyProtectClient.from_env({"KP_TOKEN": "tok"})

def test_an_api_key_client_gets_a_new_iam_token_once_on_401(scripted):
    scripted.reply(200, {"access_token": "first"})
    scripted.reply(401, kp_error(401, "UNAUTHORIZED_ERR", "token expired"))
    scripted.reply(200, {"access_token": "second"})
    scripted.reply(200, KEY)
    with KeyProtectClient.from_api_key(scripted.url, "i", SECRET,
                                       iam_url=scripted.url + "/identity/token") as client:
        assert client.get_key("k1")["id"] == "k1"
        paths = [r["path"] for r in scripted.requests]
        assert paths == ["/identity/token", "/api/v2/keys/k1", "/identity/token",
                         "/api/v2/keys/k1"]
        assert scripted.last["headers"]["authorization"] == "Bearer second"
        # A second 401 right after a fresh token is the answer: no loop.
        scripted.reply(401, kp_error(401, "UNAUTHORIZED_ERR", "no access"))
        scripted.reply(200, {"access_token": "third"})
        scripted.reply(401, kp_error(401, "UNAUTHORIZED_ERR", "no access"))
        with pytest.raises(KeyProtectError) as info:
            client.get_key("k1")
        assert info.value.status == 401 and len(scripted.requests) == 7
        assert SECRET not in repr(client) and SECRET not in str(vars(client))

def test_a_bearer_token_client_does_not_retry_a_401(scripted, client):
    scripted.reply(401, kp_error(401, "UNAUTHORIZED_ERR", "token expired"))
    with pytest.raises(KeyProtectError):
        client.get_key("k1")
    assert len(scripted.requests) == 1

@pytest.mark.parametrize("body", [
    {"errorCode": SECRET, "errorMessage": "no such key"},                  # the key as the code
    {"errorCode": "BXNIM0415E", "errorMessage": "x" * 490 + SECRET},       # across the cut
    {"errorCode": "BXNIM0415E", "errorMessage": "no", "context": {"apikey": SECRET}},
])
def test_an_iam_error_that_repeats_the_api_key_keeps_none_of_its_text(scripted, body):
    scripted.reply(400, body)
    with pytest.raises(KeyProtectError) as info:
        iam_token(SECRET, url=scripted.url + "/identity/token")
    shown = str(info.value) + repr(info.value) + repr(vars(info.value))
    assert SECRET not in shown and SECRET[:8] not in shown
    assert info.value.code in ("BXNIM0415E", "HTTP_400")

def test_plain_http_elsewhere_warns_for_the_service_and_is_refused_for_iam():
    with pytest.warns(UserWarning, match="plain http to another machine"):
        KeyProtectClient("http://us-south.kms.cloud.ibm.com", "inst-1", "abc.def").close()
    with pytest.raises(ValueError, match="the API key would cross the network in clear"):
        iam_token(SECRET, url="http://iam.cloud.ibm.com/identity/token")
