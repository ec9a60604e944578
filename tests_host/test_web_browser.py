"""The web page in a real headless Chromium (selenium + chromedriver) against the firmware on
the MicroPython unix port, connected to the demo central system: the page loads, the status
updates, a setting is written (and a refused one explained), a simulated car charges, and
with the API password set the page is refused without credentials.

Skipped, with the reason, where Chromium or chromedriver is missing (`make test` installs
Debian's chromium and chromium-driver through tools/browser.py when it can)."""

import os
import sys

import pytest
from conftest import ROOT
from e2e import CsmsThread, Firmware

sys.path.insert(0, os.path.join(ROOT, "tools"))

import browser  # noqa: E402

pytestmark = pytest.mark.e2e

_WHY = browser.missing()
if _WHY:
    pytest.skip("web page browser test skipped: " + _WHY, allow_module_level=True)

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def chrome():
    d = browser.driver()
    yield d
    browser.quit_driver(d)


@pytest.fixture
def charger(tmp_path):
    csms = CsmsThread()
    csms.start()
    fw = Firmware(tmp_path, csms.url())
    try:
        fw.start()
        yield fw
    finally:
        fw.stop()
        csms.close()


def text(d, css):
    return d.find_element(By.CSS_SELECTOR, css).text


def wait_text(d, css, want, timeout=20):
    """Wait until the element's text contains `want`; a clear message when it never does."""
    try:
        WebDriverWait(d, timeout, 0.1).until(lambda d: want in text(d, css))
    except Exception:
        raise AssertionError("%s never showed %r; it shows %r" % (css, want, text(d, css)))


def test_page_shows_status_writes_settings_and_drives_the_simulated_car(chrome, charger):
    d, fw = chrome, charger
    d.get("http://127.0.0.1:%d/" % fw.api_port)
    # Live status: the link, the car, OCPP accepted by the central system.
    wait_text(d, "#link", "live")
    wait_text(d, "#car", "idle (1)")
    wait_text(d, "#ocpp", "connected, accepted")
    assert d.find_element(By.ID, "sim").is_displayed()  # the simulator answers /api/sim

    # A setting: the current, written through /api/set and applied.
    amp = d.find_element(By.CSS_SELECTOR, "[data-k=amp]")
    amp.clear()
    amp.send_keys("10", Keys.TAB)
    wait_text(d, "#m_amp", "saved")
    assert fw.status("amp") == {"amp": 10}
    wait_text(d, "#cur", "requested 10 A")
    # A refused value: the reason from the 400 body, nothing applied.
    amp.clear()
    amp.send_keys("40", Keys.TAB)
    wait_text(d, "#m_amp", "refused: out of range")
    assert fw.status("amp") == {"amp": 10}
    # The field shows the applied value again.
    WebDriverWait(d, 10, 0.1).until(lambda d: amp.get_attribute("value") == "10")
    # A switch: the charging mode.
    d.find_element(By.CSS_SELECTOR, "[data-k=frc] option[value='1']").click()
    wait_text(d, "#m_frc", "saved")
    assert fw.status("frc") == {"frc": 1}
    d.find_element(By.CSS_SELECTOR, "[data-k=frc] option[value='0']").click()
    WebDriverWait(d, 10, 0.1).until(lambda d: fw.status("frc") == {"frc": 0})

    # The simulated car: plug in, hold a card, ask for power: charging.
    d.find_element(By.CSS_SELECTOR, "[data-s='cp=B']").click()
    wait_text(d, "#car", "(3)")
    card = d.find_element(By.ID, "s_card")
    card.clear()
    card.send_keys("WEB00001")
    d.find_element(By.CSS_SELECTOR, "[data-i=card]").click()
    d.find_element(By.CSS_SELECTOR, "[data-s='cp=C']").click()
    wait_text(d, "#car", "charging (2)", timeout=30)
    assert fw.status("car") == {"car": 2}
    wait_text(d, "#simst", "contactor closed")
    assert "on" in d.find_element(By.CSS_SELECTOR, "[data-s='cp=C']").get_attribute("class")

    # A fault from the browser: the RCD trips, the page shows the error.
    d.find_element(By.CSS_SELECTOR, "[data-s='rcd=trip']").click()
    wait_text(d, "#err", "residual")
    wait_text(d, "#simst", "contactor open")
    # Cleared from the browser too: the fault goes, then the deliberate reset.
    ok = d.find_element(By.CSS_SELECTOR, "[data-s='rcd=ok']")
    ok.click()
    WebDriverWait(d, 10, 0.1).until(lambda d: ok.get_attribute("class") == "on")
    d.find_element(By.ID, "frs").click()
    wait_text(d, "#err", "none")
    assert fw.status("err") == {"err": 0}
    # A bad simulator value is explained, not applied.
    temp = d.find_element(By.ID, "s_temp")
    temp.clear()
    temp.send_keys("hot")
    d.find_element(By.CSS_SELECTOR, "[data-i=temp]").click()
    wait_text(d, "#m_sim", "refused")
    # No script error on the way (refused requests are network entries, not errors).
    assert [e for e in d.get_log("browser") if e.get("source") != "network"] == []


def test_page_is_refused_without_the_api_password(chrome, charger):
    d, fw = chrome, charger
    assert fw.set(apw="pw-for-web")[0] == 200
    d.get("http://127.0.0.1:%d/" % fw.api_port)
    # Headless, there is no password prompt to answer: the page stays empty.
    assert not d.find_elements(By.ID, "car")
    assert any("401" in e["message"] for e in d.get_log("browser"))
    # With the password the page loads and its own requests carry it.
    d.get("http://admin:pw-for-web@127.0.0.1:%d/" % fw.api_port)
    wait_text(d, "#link", "live")
    wait_text(d, "#car", "idle (1)")


class Cards:
    """go-e's `cards` key (a list of {name, energy, cardId}, written whole), as a provider of
    the API, for the page's card list until the firmware has its own."""

    def __init__(self):
        self.cards = [{"name": "Alice", "energy": 1500, "cardId": "04A1"}]

    def status(self, out):
        out["cards"] = self.cards

    def owns(self, key):
        return key == "cards"

    def check(self, key, value):
        if not isinstance(value, list) or not all(isinstance(c, dict) for c in value):
            return "expected a list of cards"
        return "at most 2 cards" if len(value) > 2 else None

    def apply(self, changes):
        self.cards = changes["cards"]


@pytest.fixture
def board_api(tmp_path):
    """The API as on a board (no simulator: /api/sim is 404) with `cards`, on CPython."""
    import asyncio
    import threading

    from e2e import web_page

    from firmware.api import Api
    from firmware.config import Config

    cards = Cards()
    api = Api(Config(str(tmp_path)), (cards,), page=web_page())
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def run():
        asyncio.set_event_loop(loop)
        loop.run_until_complete(api.start("127.0.0.1", 0))
        ready.set()
        loop.run_forever()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert ready.wait(10)
    yield api.server.port, cards
    asyncio.run_coroutine_threadsafe(api.close(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    t.join(5)
    loop.close()


def test_page_lists_adds_and_removes_cards_and_hides_the_simulator_on_a_board(chrome, board_api):
    d, (port, cards) = chrome, board_api
    d.get("http://127.0.0.1:%d/" % port)
    wait_text(d, "#link", "live")
    wait_text(d, "#clist", "Alice")
    assert "1.50 kWh" in text(d, "#clist") and "04A1" in text(d, "#clist")
    assert not d.find_element(By.ID, "sim").is_displayed()  # /api/sim is 404 on a board
    d.find_element(By.ID, "cname").send_keys("Bob")
    d.find_element(By.ID, "cid").send_keys("04B2")
    d.find_element(By.ID, "cadd").click()
    wait_text(d, "#clist", "Bob")
    assert [c["name"] for c in cards.cards] == ["Alice", "Bob"]
    assert cards.cards[1]["cardId"] == "04B2"
    # One more is refused, with the reason; nothing changes.
    d.find_element(By.ID, "cadd").click()
    wait_text(d, "#m_cards", "refused: at most 2 cards")
    assert len(cards.cards) == 2
    # Remove Alice (the first row's button).
    d.find_element(By.CSS_SELECTOR, "#clist tr:first-child button").click()
    WebDriverWait(d, 10, 0.1).until(lambda d: "Alice" not in text(d, "#clist"))
    assert [c["name"] for c in cards.cards] == ["Bob"]
