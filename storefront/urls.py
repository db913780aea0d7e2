"""URLs of the demo storefront, mounted at "/"."""

from django.urls import path

from storefront import views

app_name = "storefront"

urlpatterns = [
    path("", views.home, name="home"),
    path("c/<path:category_path>/", views.category, name="category"),
    path("p/<str:sku>/", views.product, name="product"),
    path("cart/", views.cart, name="cart"),
    path("cart/add/", views.cart_add, name="cart-add"),
    path("cart/update/", views.cart_update, name="cart-update"),
    path("cart/remove/", views.cart_remove, name="cart-remove"),
    path("checkout/", views.checkout, name="checkout"),
    path("checkout/confirmation/", views.confirmation, name="confirmation"),
    path("login/", views.login, name="login"),
    path("logout/", views.logout, name="logout"),
]
