"""Views that exist only in benchmarks: the framework's floor and the anti-pattern Aisle avoids."""

import json
import os

from django.http import HttpRequest, JsonResponse
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from merch.models import Product
from recs.training.registry import load_serving

# A JSON file with a real answer of the API, written by the bench before gunicorn starts, so that
# the bare view renders a payload of the same size.
BARE_PAYLOAD_ENV = "AISLE_BENCH_BARE_PAYLOAD"
SYNC_MODEL_KEY = "hybrid"  # the learner behind the serving user lists (CANDIDATE_SOURCES["user"])


def _bare_payload() -> dict:
    path = os.environ.get(BARE_PAYLOAD_ENV)
    if not path:
        return {}
    with open(path) as payload:
        return json.load(payload)


class BareView(APIView):
    """The floor of a DRF GET: no authentication, permission or throttle, no work; a constant
    payload the size of a real answer, so JSON rendering costs the same."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []
    schema = None  # not part of the API's schema
    payload: dict = {}

    def get(self, request):
        return Response(self.payload)


def sync_model_view(request: HttpRequest) -> JsonResponse:
    """What a naive integration does per request: load the serving model's artifact from disk,
    score the shopper with it, and read the products' details from the database."""
    query = request.GET
    history = [
        sku for sku in [query.get("product_id", ""), *query.get("cart", "").split(",")] if sku
    ]
    limit = int(query.get("limit", "8"))
    loaded = load_serving(SYNC_MODEL_KEY)
    if loaded is None:
        return JsonResponse({"items": [], "source": "no_model"})
    version, learner = loaded
    ranked = learner.recommend(query.get("user_id") or None, history, limit * 2, exclude=history)
    products = Product.objects.in_bulk([sku for sku, _ in ranked], field_name="sku")
    items = [
        {
            "sku": sku,
            "score": score,
            "title": products[sku].title,
            "price": str(products[sku].price),
        }
        for sku, score in ranked
        if sku in products and products[sku].is_active
    ][:limit]
    return JsonResponse({"items": items, "model_version": version.pk, "source": "sync_model"})


bare_view = BareView.as_view(payload=_bare_payload())
