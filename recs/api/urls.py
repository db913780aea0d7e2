"""URLs of /api/v1/."""

from django.urls import path, re_path

from recs.api.catalog import ProductsView, ProductView, StockView
from recs.api.events import EventsView
from recs.api.recommendations import RecommendationsView
from recs.api.shoppers import ShopperErasureView

urlpatterns = [
    path("events", EventsView.as_view(), name="api-events"),
    path("recommendations", RecommendationsView.as_view(), name="api-recommendations"),
    path("products", ProductsView.as_view(), name="api-products"),
    # Any SKU text (even "", "/" or a newline) reaches the view, which answers 404 in JSON.
    re_path(r"^products/(?P<sku>[\s\S]*)\Z", ProductView.as_view(), name="api-product"),
    path("stock", StockView.as_view(), name="api-stock"),
    path("shoppers/<str:user_id>", ShopperErasureView.as_view(), name="api-shopper-erase"),
]
