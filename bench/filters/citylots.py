"""A deterministic generator of events shaped like San Francisco city-lot GeoJSON features.

The real data set (``citylots.json``, used by event-ruler's own benchmark) is a list of
features such as::

    {"type": "Feature",
     "properties": {"MAPBLKLOT": "0001001", "BLKLOT": "0001001", "BLOCK_NUM": "0001",
                    "LOT_NUM": "001", "FROM_ST": "0", "TO_ST": "0", "STREET": "UNKNOWN",
                    "ST_TYPE": null, "ODD_EVEN": "E"},
     "geometry": {"type": "Polygon",
                  "coordinates": [[[-122.422003528252475, 37.808480096967251, 0.0], ...]]}}

Nothing is downloaded: the same seed always gives the same events.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

STREETS = [
    "JEFFERSON", "BEACH", "NORTH POINT", "BAY", "FRANCISCO", "CHESTNUT", "LOMBARD", "GREENWICH",
    "FILBERT", "UNION", "GREEN", "VALLEJO", "BROADWAY", "PACIFIC", "JACKSON", "WASHINGTON",
    "CLAY", "SACRAMENTO", "CALIFORNIA", "PINE", "BUSH", "SUTTER", "POST", "GEARY", "OFARRELL",
    "ELLIS", "EDDY", "TURK", "GOLDEN GATE", "MCALLISTER", "FULTON", "GROVE", "HAYES", "FELL",
    "OAK", "PAGE", "HAIGHT", "WALLER", "HERMANN", "DUBOCE", "MARKET", "MISSION", "HOWARD",
    "FOLSOM", "HARRISON", "BRYANT", "BRANNAN", "TOWNSEND", "KING", "BERRY", "VAN NESS",
    "POLK", "LARKIN", "HYDE", "LEAVENWORTH", "JONES", "TAYLOR", "MASON", "POWELL", "STOCKTON",
    "GRANT", "KEARNY", "MONTGOMERY", "SANSOME", "BATTERY", "FRONT", "DAVIS", "DRUMM",
    "STEINER", "FILLMORE", "WEBSTER", "BUCHANAN", "LAGUNA", "OCTAVIA", "GOUGH", "FRANKLIN",
    "DIVISADERO", "BRODERICK", "BAKER", "LYON", "CENTRAL", "MASONIC", "ASHBURY", "CLAYTON",
    "COLE", "SHRADER", "STANYAN", "ARGUELLO", "IRVING", "JUDAH", "KIRKHAM", "LAWTON",
    "MORAGA", "NORIEGA", "ORTEGA", "PACHECO", "QUINTARA", "RIVERA", "SANTIAGO", "TARAVAL",
    "ULLOA", "VICENTE", "WAWONA", "SLOAT", "CLEMENT", "GEARY", "BALBOA", "CABRILLO", "UNKNOWN",
]
ST_TYPES = ["ST", "AVE", "BLVD", "WAY", "TER", "PL", "CT", "DR", "LN", None]


def feature(rng: random.Random, index: int) -> dict[str, Any]:
    block = rng.randint(1, 7600)
    lot = rng.randint(1, 300)
    block_text = f"{block:04d}"
    lot_text = f"{lot:03d}"
    letter = rng.choice("ABCDEFGH") if rng.random() < 0.05 else ""
    mapblklot = block_text + lot_text
    from_st = rng.randint(0, 4000)
    street = rng.choice(STREETS)
    x0 = -122.52 + rng.random() * 0.17
    y0 = 37.70 + rng.random() * 0.11
    ring = []
    for _ in range(rng.randint(4, 12)):
        ring.append([round(x0 + rng.uniform(-2e-4, 2e-4), 12), round(y0 + rng.uniform(-2e-4, 2e-4), 12), 0.0])
    ring.append(list(ring[0]))
    return {
        "type": "Feature",
        "properties": {
            "MAPBLKLOT": mapblklot,
            "BLKLOT": mapblklot + letter,
            "BLOCK_NUM": block_text + letter,
            "LOT_NUM": lot_text,
            "FROM_ST": str(from_st),
            "TO_ST": str(from_st + rng.choice([0, 2, 4, 10, 20])),
            "STREET": street,
            "ST_TYPE": rng.choice(ST_TYPES),
            "ODD_EVEN": "E" if from_st % 2 == 0 else "O",
        },
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }


def features(count: int, seed: int = 2024) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    for index in range(count):
        yield feature(rng, index)
