"""The default gateway and the official SDK clients pointed at it, one of each per test module
(module scope): the SDK test files import these fixtures instead of each defining them."""
import anthropic
import openai
import pytest

from default_gateway import DEMO_KEY, DefaultGateway


@pytest.fixture(scope="module")
def gateway():
    with DefaultGateway() as gw:
        yield gw


@pytest.fixture(scope="module")
def oai(gateway):
    return openai.OpenAI(base_url=f"{gateway.base}/v1", api_key=DEMO_KEY, max_retries=0, timeout=30)


@pytest.fixture(scope="module")
def claude(gateway):
    return anthropic.Anthropic(base_url=gateway.base, api_key=DEMO_KEY, max_retries=0, timeout=30)
