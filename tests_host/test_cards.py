"""firmware/cards.py: the RFID cards by name and their energy (go-e `cards`, `lrn`, `del`) and
the session's card (`trx`), standalone and with OCPP."""

import json

import pytest
from txnkit import drain, events, make, run

from firmware import cards as cardsmod
from firmware.api import Api


def attach(cp):
    assert cardsmod.attach(cp) == [cp.cards.run]  # the tests run the booking step by step
    return cp.cards


@pytest.fixture
def standalone(tmp_path):
    cp, txn = make(tmp_path, ocppe=False, acs=1)
    return cp, txn, attach(cp)


@pytest.fixture
def ocpp(tmp_path):
    cp, txn = make(tmp_path)
    return cp, txn, attach(cp)


def view(cards):
    out = {}
    cards.status(out)
    return out


def test_ten_slots_as_go_e_shows_them(standalone):
    _, _, cards = standalone
    v = view(cards)
    assert v["trx"] is None
    assert v["cards"] == [{"name": "", "energy": 0, "cardId": False}] * 10


def test_cards_are_written_per_slot_and_survive_a_restart(standalone, tmp_path):
    cp, _, cards = standalone
    value = [{}, {"name": "Anna", "rfid": "04A1B2C3"}, {"name": "Ben", "rfid": "B2", "energy": 7}]
    assert cards.check("cards", value) is None
    cards.apply({"cards": value})
    v = view(cards)["cards"]
    assert v[0] == {"name": "", "energy": 0, "cardId": False}
    assert v[1] == {"name": "Anna", "energy": 0, "cardId": True}
    assert v[2] == {"name": "Ben", "energy": 7, "cardId": True}
    # A read echoed back changes nothing; a field left out stays.
    cards.apply({"cards": [{"cardId": False}, {"name": "Anna B."}]})
    assert cards.tag(1) == "04A1B2C3" and view(cards)["cards"][1]["name"] == "Anna B."
    assert cards.tag(0) is None
    again = cardsmod.Cards(cp)
    assert view(again)["cards"] == view(cards)["cards"] and again.slot("B2") == 2
    text = open(str(tmp_path / "cards.json")).read()
    assert "04A1B2C3" in text  # on flash, never in a read of the API
    assert "04A1B2C3" not in json.dumps(view(cards))


def test_learn_the_last_card_read_and_delete(standalone):
    cp, txn, cards = standalone
    assert cards.check("lrn", 3) == "no card read yet"
    cards._on_charger("card", "CAFE01")
    assert cards.check("lrn", 3) is None
    cards.apply({"lrn": 3})
    assert cards.slot("CAFE01") == 3
    assert cards.check("del", 3) is None
    cards.apply({"del": 3})
    assert cards.slot("CAFE01") is None


@pytest.mark.parametrize(
    "key,value",
    [
        ("cards", {"name": "x"}),
        ("cards", [{}] * 11),
        ("cards", [{"name": 5}]),
        ("cards", [{"name": "x" * 33}]),
        ("cards", [{"rfid": "x" * 21}]),
        ("cards", [{"energy": -1}]),
        ("cards", [{"energy": True}]),
        ("cards", [{"colour": "red"}]),
        ("cards", ["Anna"]),
        ("lrn", 10),
        ("del", -1),
        ("del", True),
        ("trx", 11),
        ("trx", True),
        ("trx", "1"),
        ("trx", 1),  # slot 0 is empty
    ],
)
def test_bad_values_are_refused(standalone, key, value):
    _, _, cards = standalone
    assert cards.check(key, value)


def test_a_bad_request_applies_nothing_across_keys(standalone):
    cp, _, cards = standalone
    api = Api(cp.config, providers=(cards,))
    code, body = api.set({"cards": '[{"name": "A", "rfid": "X1"}]', "amp": "40"})
    assert code == 400 and list(body) == ["amp"]
    assert cards.slot("X1") is None
    code, body = api.set({"cards": '[{"name": "A", "rfid": "X1"}]', "amp": "10"})
    assert (code, body) == (200, {"cards": True, "amp": True}) and cards.slot("X1") == 0


def test_standalone_a_stored_card_authorizes_and_gets_the_session_energy(standalone):
    cp, txn, cards = standalone
    cards.apply({"cards": [{"name": "Anna", "rfid": "A1"}]})

    async def go():
        await events(txn, "plugged")
        assert view(cards)["trx"] is None and not cp.charger.authorized  # acs=1
        cards._on_charger("card", "A1")  # the charger's tick hands the card to both
        await events(txn, ("card", "A1"))
        assert cp.charger.authorized and view(cards)["trx"] == 1
        cp.charger.session_wh = 1234.4
        cards._on_charger("unplugged", None)
        cards.settle()

    run(go())
    assert view(cards)["cards"][0]["energy"] == 1234
    assert cardsmod.Cards(cp).view()[0]["energy"] == 1234


def test_standalone_trx_unlocks_with_or_without_a_card(standalone):
    cp, txn, cards = standalone
    cards.apply({"cards": [{}, {"name": "Ben", "rfid": "B2"}]})
    run(events(txn, "plugged"))
    assert cards.check("trx", 0) is None
    cards.apply({"trx": 0})
    assert cp.charger.authorized and view(cards)["trx"] == 0
    cards.apply({"trx": None})
    assert not cp.charger.authorized and view(cards)["trx"] is None
    cards.apply({"trx": 2})
    assert cp.charger.authorized and view(cards)["trx"] == 2


def test_ocpp_trx_starts_a_transaction_the_central_system_authorizes(ocpp):
    cp, txn, cards = ocpp
    cards.apply({"cards": [{"name": "Anna", "rfid": "A1"}]})
    assert cards.check("trx", 0).startswith("OCPP needs a card")

    async def go():
        await events(txn, "plugged")
        assert cards.check("trx", 1) is None
        cards.apply({"trx": 1})
        await events(txn, txn._events.pop(0))
        assert cp.tx.id_tag == "A1" and view(cards)["trx"] == 1
        assert cards.check("trx", 1).startswith("a transaction runs")
        cp.charger.energy_wh = 3500.0
        cards.apply({"trx": None})  # ends it: StopTransaction, reason Local
        assert cp.tx is None and view(cards)["trx"] is None
        cards.settle()
        await drain(txn)

    run(go())
    assert [p["idTag"] for p in cp.session.sent("Authorize")] == ["A1"]
    assert cp.session.sent("StopTransaction")[0]["reason"] == "Local"
    assert view(cards)["cards"][0]["energy"] == 2500  # 3500 - 1000 Wh


def test_ocpp_trx_0_uses_the_dummy_card_and_reads_0(tmp_path):
    cp, txn = make(tmp_path, ocppd="FREE")
    cards = attach(cp)

    async def go():
        await events(txn, "plugged")
        assert cards.check("trx", 0) is None
        cards.apply({"trx": 0})
        await events(txn, txn._events.pop(0))
        assert cp.tx.id_tag == "FREE" and view(cards)["trx"] == 0

    run(go())
