"""byoklib.mock's front door: `running_server` is serving's own function, loaded only when
asked for, so the model alone never loads the HTTP face."""
import subprocess
import sys

import pytest

import byoklib
import byoklib.mock
from byoklib.mock.http import serving


def test_running_server_is_servings_own_function():
    assert byoklib.mock.running_server is serving.running_server is byoklib.running_server
    assert dir(byoklib.mock).count("running_server") == 1


def test_another_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'serve'"):
        byoklib.mock.serve


def test_the_model_alone_does_not_load_the_http_face():
    probe = ("import sys, byoklib.mock.service, byoklib.mock.hsm\n"
             "print(sorted(m for m in sys.modules if m.startswith('byoklib.mock.http')))\n"
             "from byoklib.mock import running_server\n"
             "print('byoklib.mock.http.serving' in sys.modules)\n")
    lines = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                           check=True).stdout.split()
    assert lines == ["[]", "True"]
