"""A deterministic generator of EventBridge-style order events, the "realistic" kind of bench/filters.

Where a city-lot feature (citylots.py) is a flat bag of strings beside one coordinate ring, these
are shaped like what an event source mapping usually filters: an EventBridge envelope whose
``detail`` holds nested objects several levels deep, an array of line-item objects, and arrays
of numbers (item dimensions, a latency histogram, a geo point) that filters never name. One in five is a slim update without items or
metrics; sizes spread from about 0.3 to 1 KB::

    {"version": "0", "id": "…", "detail-type": "Order Placed", "source": "com.shop.orders",
     "account": "123456789012", "time": "2026-03-01T12:00:00Z", "region": "eu-west-1",
     "resources": ["arn:aws:…"],
     "detail": {"orderId": "ord-0421-88031", "status": "paid",
                "customer": {"id": "c-…", "tier": "gold",
                             "address": {"city": "LYON", "zip": "69002", "geo": [45.76, 4.83]}},
                "items": [{"sku": "SKU-…", "qty": 2, "price": 19.9, "dims": [10.0, 4.5, 2.0]}, …],
                "totals": {"amount": 39.8, "currency": "EUR", "tax": 6.63},
                "metrics": {"latencyMs": [12.1, 8.4, …], "retries": 0},
                "client": {"ip": "10.1.2.3", "agent": "app/4.2"}}}

Nothing is downloaded: the same seed always gives the same events.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

CITIES = [
    "LYON", "PARIS", "BERLIN", "MUNICH", "MADRID", "SEVILLE", "ROME", "MILAN", "LISBON", "PORTO",
    "DUBLIN", "CORK", "VIENNA", "GRAZ", "PRAGUE", "BRNO", "WARSAW", "KRAKOW", "OSLO", "BERGEN",
    "STOCKHOLM", "MALMO", "HELSINKI", "TURKU", "COPENHAGEN", "AARHUS", "ZURICH", "GENEVA", "BRUSSELS",
    "GHENT", "AMSTERDAM", "UTRECHT", "ATHENS", "PATRAS", "BUDAPEST", "DEBRECEN", "SOFIA", "VARNA",
    "BUCHAREST", "CLUJ", "ZAGREB", "SPLIT", "LJUBLJANA", "MARIBOR", "TALLINN", "TARTU", "RIGA",
    "VILNIUS", "KAUNAS", "VALLETTA", "NICOSIA", "LIMASSOL", "LUXEMBOURG", "REYKJAVIK", "EDINBURGH",
    "GLASGOW", "LONDON", "LEEDS", "CARDIFF", "BELFAST", "MARSEILLE", "NICE", "TOULOUSE", "BORDEAUX",
    "NANTES", "LILLE", "HAMBURG", "COLOGNE", "FRANKFURT", "STUTTGART", "DRESDEN", "LEIPZIG",
    "VALENCIA", "BILBAO", "MALAGA", "NAPLES", "TURIN", "FLORENCE", "BOLOGNA", "GENOA", "VENICE",
    "ANTWERP", "ROTTERDAM", "EINDHOVEN", "GOTHENBURG", "UPPSALA", "TAMPERE", "ODENSE", "BASEL",
    "BERN", "LINZ", "SALZBURG", "OSTRAVA", "GDANSK", "WROCLAW", "POZNAN", "THESSALONIKI", "IASI",
    "PLOVDIV", "RIJEKA", "KOPER", "NARVA", "LIEPAJA", "KLAIPEDA", "UNKNOWN",
]
STATUSES = ["placed", "paid", "packed", "shipped", "delivered", "cancelled", "refunded", "on-hold"]
DETAIL_TYPES = ["Order Placed", "Order Updated", "Order Shipped", "Order Cancelled"]
SOURCES = ["com.shop.orders", "com.shop.checkout", "com.shop.returns"]
TIERS = ["bronze", "silver", "gold", "platinum"]
REGIONS = ["eu-west-1", "eu-central-1", "us-east-1", "ap-southeast-2"]
CURRENCIES = ["EUR", "USD", "GBP", "SEK"]


def order(rng: random.Random, index: int) -> dict[str, Any]:
    store = rng.randint(0, 999)
    items = []
    for _ in range(rng.randint(1, 4)):
        items.append({
            "sku": f"SKU-{rng.randint(0, 99999):05d}",
            "qty": rng.randint(1, 5),
            "price": round(rng.uniform(1, 200), 2),
            "dims": [round(rng.uniform(1, 60), 1) for _ in range(3)],
        })
    amount = round(sum(item["qty"] * item["price"] for item in items), 2)
    event = {
        "version": "0",
        "id": f"{rng.getrandbits(32):08x}-{rng.getrandbits(16):04x}-{rng.getrandbits(16):04x}-{rng.getrandbits(48):012x}",
        "detail-type": rng.choice(DETAIL_TYPES),
        "source": rng.choice(SOURCES),
        "account": "123456789012",
        "time": f"2026-03-{1 + index % 28:02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00Z",
        "region": rng.choice(REGIONS),
        "resources": [f"arn:aws:states:eu-west-1:123456789012:execution:orders:{index}"],
        "detail": {
            "orderId": f"ord-{store:03d}-{rng.randint(0, 99999):05d}",
            "status": rng.choice(STATUSES),
            "customer": {
                "id": f"c-{rng.randint(0, 10**8):08d}",
                "tier": rng.choice(TIERS),
                "address": {
                    "city": rng.choice(CITIES),
                    "zip": f"{rng.randint(1000, 99999)}",
                    "geo": [round(rng.uniform(35, 65), 6), round(rng.uniform(-10, 30), 6)],
                },
            },
            "items": items,
            "totals": {"amount": amount, "currency": rng.choice(CURRENCIES), "tax": round(amount * 0.2, 2)},
            "metrics": {"latencyMs": [round(rng.uniform(1, 90), 1) for _ in range(rng.randint(2, 24))], "retries": rng.randint(0, 2)},
            "client": {"ip": f"10.{rng.randint(0, 99)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}", "agent": f"app/{rng.randint(1, 9)}.{rng.randint(0, 9)}"},
        },
    }
    if rng.random() < 0.2:
        # A slim update (about 0.3 to 0.5 KB): no line items, metrics, client, totals or resources.
        detail = event["detail"]
        del detail["items"], detail["metrics"], detail["client"], detail["totals"], event["resources"]
    return event


def orders(count: int, seed: int = 2024) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    for index in range(count):
        yield order(rng, index)
