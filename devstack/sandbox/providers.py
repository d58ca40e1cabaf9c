"""The provider (sales channel) table served by ``GET /v1/partner/providers``."""

from __future__ import annotations

PROVIDERS: list[dict[str, object]] = [
    {"id": 1, "name": "klikit", "display_name": "klikit"},
    {"id": 2, "name": "uber_eats", "display_name": "Uber Eats"},
    {"id": 3, "name": "deliveroo", "display_name": "Deliveroo"},
    {"id": 5, "name": "doordash", "display_name": "DoorDash"},
    {"id": 6, "name": "grabfood", "display_name": "GrabFood"},
    {"id": 7, "name": "foodpanda", "display_name": "Foodpanda"},
    {"id": 9, "name": "gofood", "display_name": "GoFood"},
    {"id": 11, "name": "shopeefood", "display_name": "ShopeeFood"},
    {"id": 12, "name": "demaecan", "display_name": "Demaecan"},
    {"id": 13, "name": "pickaroo", "display_name": "Pickaroo"},
    {"id": 14, "name": "wolt", "display_name": "Wolt"},
    {"id": 15, "name": "square", "display_name": "Square"},
    {"id": 16, "name": "tiktok", "display_name": "TikTok Shop"},
    {"id": 17, "name": "maxim", "display_name": "Maxim"},
]
