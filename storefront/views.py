"""Storefront pages: each parses the request, calls one selector or service, renders."""

from django import forms
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views.decorators.http import require_GET, require_POST

from recs.client_address import client_address
from recs.templatetags.recs import build_context
from storefront import selectors
from storefront.cart import MAX_LINE_QUANTITY, SessionCart
from storefront.services import (
    Order,
    OrderRefused,
    OrderTooLarge,
    checkout_allowed,
    place_order,
)

LAST_ORDER_SESSION_KEY = "last_order"


class CartLineForm(forms.Form):
    sku = forms.CharField(max_length=32)
    quantity = forms.IntegerField(min_value=0, max_value=MAX_LINE_QUANTITY, initial=1)


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:200]
    return render(
        request,
        "storefront/home.html",
        {
            "query": query,
            "results": selectors.search_page(query, request.GET.get("page")) if query else None,
            "categories": selectors.top_categories(),
            "new_arrivals": [] if query else selectors.new_arrivals(),
        },
    )


@require_GET
def category(request: HttpRequest, category_path: str) -> HttpResponse:
    found = selectors.category_by_path(category_path)
    if found is None:
        raise Http404("No such category.")
    products = selectors.category_listing(
        found,
        request.GET.get("sort", selectors.DEFAULT_SORT),
        request.GET.get("page"),
        build_context(request, "category", category=found),
    )
    return render(
        request,
        "storefront/category.html",
        {
            "category": found,
            "trail": selectors.category_trail(found),
            "subcategories": found.children.order_by("name"),
            "page": products.page,
            "sort": products.sort,
            "sort_note": products.note,
            "sorts": selectors.SORTS,
        },
    )


@require_GET
def product(request: HttpRequest, sku: str) -> HttpResponse:
    found = selectors.product_for_page(sku)
    if found is None:
        raise Http404("No such product.")
    stock = getattr(found, "stock", None)
    return render(
        request,
        "storefront/product.html",
        {
            "product": found,
            "available_quantity": stock.available_quantity if stock is not None else 0,
            "trail": selectors.category_trail(found.category) if found.category else [],
            "in_cart": SessionCart(request.session).quantities.get(found.sku, 0),
        },
    )


@require_GET
def cart(request: HttpRequest) -> HttpResponse:
    lines = selectors.cart_lines(SessionCart(request.session).quantities)
    return render(
        request,
        "storefront/cart.html",
        {
            "lines": lines,
            "skus": [line.product.sku for line in lines],
            "total": sum(line.line_total for line in lines),
            "currency": lines[0].product.currency if lines else "",
            "max_quantity": MAX_LINE_QUANTITY,
        },
    )


def _cart_line(request: HttpRequest) -> tuple[str, int, int] | None:
    """(sku, quantity, available) of a valid cart form for a product on sale, else None."""
    form = CartLineForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Choose a quantity between 0 and {MAX_LINE_QUANTITY}.")
        return None
    found = selectors.product_for_page(form.cleaned_data["sku"])
    if found is None:
        messages.error(request, "That product is no longer sold.")
        return None
    stock = getattr(found, "stock", None)
    available = stock.available_quantity if stock is not None else 0
    return found.sku, form.cleaned_data["quantity"], available


@require_POST
def cart_add(request: HttpRequest) -> HttpResponse:
    line = _cart_line(request)
    if line is None:
        return redirect("storefront:cart")
    sku, quantity, available = line
    if available == 0:
        messages.error(request, "Sorry, that product is sold out.")
        return redirect("storefront:product", sku=sku)
    cart_now = SessionCart(request.session)
    wanted = cart_now.quantities.get(sku, 0) + max(quantity, 1)
    in_cart = cart_now.add(sku, max(quantity, 1), at_most=available)
    if in_cart < wanted:
        messages.warning(request, f"Only {available} left: your cart has {in_cart}.")
    else:
        messages.success(request, "Added to your cart.")
    return redirect("storefront:cart")


@require_POST
def cart_update(request: HttpRequest) -> HttpResponse:
    line = _cart_line(request)
    if line is None:
        return redirect("storefront:cart")
    sku, quantity, available = line
    in_cart = SessionCart(request.session).set(sku, min(quantity, available))
    if quantity > available:
        messages.warning(request, f"Only {available} left: your cart has {in_cart}.")
    else:
        messages.success(request, "Cart updated." if in_cart else "Removed from your cart.")
    return redirect("storefront:cart")


@require_POST
def cart_remove(request: HttpRequest) -> HttpResponse:
    SessionCart(request.session).remove(request.POST.get("sku", ""))
    messages.success(request, "Removed from your cart.")
    return redirect("storefront:cart")


def checkout(request: HttpRequest) -> HttpResponse:
    """POST places the order; a GET (a bookmarked or reloaded URL) goes back to the cart."""
    if request.method != "POST":
        return redirect("storefront:cart")
    cart_now = SessionCart(request.session)
    if not checkout_allowed(client_address(request)):
        messages.error(request, "Too many orders from your network; try again in an hour.")
        return redirect("storefront:cart")
    try:
        order = place_order(cart_now.quantities)
    except OrderTooLarge as error:
        messages.error(request, str(error))
        return redirect("storefront:cart")
    except ValueError:
        messages.error(request, "Your cart is empty.")
        return redirect("storefront:cart")
    except OrderRefused as refusal:
        for line in refusal.refused:
            if line.available:
                cart_now.set(line.sku, line.available)
                messages.error(
                    request,
                    f"Only {line.available} of “{line.title}” left (you asked for "
                    f"{line.requested}): your cart now has {line.available}.",
                )
            else:
                cart_now.remove(line.sku)
                messages.error(
                    request, f"“{line.title}” is sold out and was removed from your cart."
                )
        messages.info(request, "Nothing was ordered yet: check your cart and order again.")
        return redirect("storefront:cart")
    cart_now.clear()
    request.session[LAST_ORDER_SESSION_KEY] = order.to_session()
    return redirect("storefront:confirmation")


@require_GET
def confirmation(request: HttpRequest) -> HttpResponse:
    stored = request.session.get(LAST_ORDER_SESSION_KEY)
    if not stored:
        return redirect("storefront:home")
    order = Order.from_session(stored)
    return render(
        request,
        "storefront/confirmation.html",
        {"order": order, "skus": [line.sku for line in order.lines]},
    )


login = auth_views.LoginView.as_view(
    template_name="storefront/login.html",
    redirect_authenticated_user=True,
    next_page=reverse_lazy("storefront:home"),
)
logout = auth_views.LogoutView.as_view(next_page=reverse_lazy("storefront:home"))
