/*
 * Aisle storefront tracker: impressions and clicks of recommendation carousels, and shop
 * events (view, add_to_cart, remove_from_cart, purchase, search) sent in batches to
 * POST /api/v1/events. No framework, no third-party requests.
 *
 * Configuration comes from meta tags rendered by {% aisle_head %}: aisle-key (the shop's
 * publishable key), aisle-shopper-token (signed by the server for this page's shopper: the
 * events are theirs, so they carry no user or session id), aisle-device, aisle-country,
 * aisle-endpoint.
 *
 * Storefront pages declare their events instead of running inline scripts:
 *   <div data-aisle-event="view" data-aisle-product-id="85123A" hidden></div>  sent on load
 *   <form data-aisle-event="add_to_cart" data-aisle-product-id="..."> ...      sent on submit
 *   <form data-aisle-event="cart_update" data-aisle-quantity-before="2"> ...   add or remove
 * and anything else can call window.aisle.track(type, {product_id, quantity, price, ...}).
 */
(function () {
  "use strict";

  if (window.aisle && window.aisle.loaded) return;

  const FLUSH_MS = 1000;
  const MAX_QUEUE = 500; // the most events kept while the endpoint is unreachable
  const MAX_BATCH = 50; // keepalive requests share a 64 KB budget: keep each one small
  const MAX_ATTEMPTS = 3;
  const ATTRIBUTION_KEY = "aisle:attribution";
  const ATTRIBUTION_SIZE = 50;
  const CONTEXT_FIELDS = ["placement", "rec_id", "position", "dwell_ms"];
  const ATTRIBUTED_TYPES = ["view", "add_to_cart", "purchase"];

  function meta(name) {
    const element = document.querySelector('meta[name="' + name + '"]');
    return element ? element.content : "";
  }

  const config = {
    endpoint: meta("aisle-endpoint") || "/api/v1/events",
    key: meta("aisle-key"),
    shopperToken: meta("aisle-shopper-token"),
    device: meta("aisle-device"),
    country: meta("aisle-country"),
  };

  // --- Ids, time, referrer -------------------------------------------------------------------

  function eventId() {
    if (window.crypto && typeof crypto.randomUUID === "function") {
      return crypto.randomUUID();
    }
    // randomUUID needs a secure context; getRandomValues does not (plain-http demo on a LAN).
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)]
      .join("-");
  }

  function externalReferrer() {
    try {
      const host = new URL(document.referrer).hostname;
      return host && host !== location.hostname ? host : "";
    } catch (error) {
      return "";
    }
  }

  // --- Attribution: a product reached from a carousel keeps its rec_id for later events -------

  function readAttribution() {
    try {
      return JSON.parse(sessionStorage.getItem(ATTRIBUTION_KEY) || "{}");
    } catch (error) {
      return {};
    }
  }

  function remember(sku, context) {
    try {
      const attribution = readAttribution();
      delete attribution[sku];
      attribution[sku] = { rec_id: context.rec_id, placement: context.placement };
      const skus = Object.keys(attribution);
      skus.slice(0, Math.max(skus.length - ATTRIBUTION_SIZE, 0)).forEach((old) => {
        delete attribution[old];
      });
      sessionStorage.setItem(ATTRIBUTION_KEY, JSON.stringify(attribution));
    } catch (error) {
      // Storage full or disabled: attribution is a nicety, tracking goes on without it.
    }
  }

  // --- The queue ------------------------------------------------------------------------------

  let queue = [];
  let timer = null;
  let warned = false;

  function schedule(delay) {
    if (timer === null) {
      timer = setTimeout(() => {
        timer = null;
        flush();
      }, delay);
    }
  }

  function send(batch, attempt) {
    return fetch(config.endpoint, {
      method: "POST",
      keepalive: true, // the request outlives the page (pagehide, link clicks, form posts)
      credentials: "omit", // the key authenticates; no cookies, so no CSRF check applies
      headers: {
        "Content-Type": "application/json",
        Authorization: "Bearer " + config.key,
        "X-Aisle-Shopper-Token": config.shopperToken,
      },
      body: JSON.stringify({ events: batch }),
    })
      .then((response) => {
        // 4xx other than 429 will not get better by retrying; the server logs reasons per item.
        if (response.status === 429 || response.status >= 500) retry(batch, attempt);
      })
      .catch(() => retry(batch, attempt));
  }

  function retry(batch, attempt) {
    // Safe to repeat: the server applies an event_id once.
    if (attempt + 1 < MAX_ATTEMPTS) {
      setTimeout(() => send(batch, attempt + 1), FLUSH_MS * 2 ** (attempt + 1));
    }
  }

  function flush() {
    if (timer !== null) {
      clearTimeout(timer);
      timer = null;
    }
    if (!config.key || !config.shopperToken) {
      if (!warned && queue.length) {
        warned = true;
        console.warn("aisle: no <meta name=\"aisle-key\"> or aisle-shopper-token; events are not sent");
      }
      queue = [];
      return;
    }
    while (queue.length) {
      send(queue.splice(0, MAX_BATCH), 0);
    }
  }

  function enqueue(event) {
    queue.push(event);
    if (queue.length > MAX_QUEUE) queue.splice(0, queue.length - MAX_QUEUE);
    schedule(FLUSH_MS);
  }

  // --- The public call ------------------------------------------------------------------------

  /**
   * Queue one event. `fields`: product_id, quantity, price, order_id, query, event_id (to make
   * a repeat idempotent, e.g. a reloaded confirmation page), and context fields placement,
   * rec_id, position, dwell_ms. Returns the event_id.
   */
  function track(type, fields) {
    fields = fields || {};
    const context = { device: config.device, country: config.country, referrer: externalReferrer() };
    CONTEXT_FIELDS.forEach((name) => {
      if (fields[name] !== undefined && fields[name] !== null && fields[name] !== "") {
        context[name] = fields[name];
      }
    });
    const event = {
      event_id: fields.event_id || eventId(),
      type: type,
      ts: new Date().toISOString(),
      context: context,
    };
    if (fields.product_id) event.product_id = String(fields.product_id);
    const quantity = parseInt(fields.quantity, 10);
    if (quantity > 0) event.quantity = quantity;
    if (fields.price !== undefined && fields.price !== null && fields.price !== "") {
      event.price = String(fields.price);
    }
    if (fields.order_id) event.order_id = String(fields.order_id);
    if (fields.query) event.query = String(fields.query).slice(0, 200);
    if (event.product_id && !context.rec_id && ATTRIBUTED_TYPES.indexOf(type) !== -1) {
      const earlier = readAttribution()[event.product_id];
      if (earlier && earlier.rec_id) {
        context.rec_id = earlier.rec_id;
        context.placement = context.placement || earlier.placement;
      }
    }
    Object.keys(context).forEach((name) => {
      if (context[name] === "") delete context[name];
    });
    enqueue(event);
    return event.event_id;
  }

  // --- Carousels ------------------------------------------------------------------------------

  const seen = new Set();
  const reduceMotion = window.matchMedia && matchMedia("(prefers-reduced-motion: reduce)").matches;

  function carouselContext(card) {
    const section = card.closest("[data-aisle-carousel]");
    return {
      placement: section ? section.dataset.aislePlacement : "",
      rec_id: section ? section.dataset.aisleRecId : "",
      position: parseInt(card.dataset.aislePosition, 10) || undefined,
    };
  }

  const impressions =
    "IntersectionObserver" in window
      ? new IntersectionObserver(
          (entries) => {
            entries.forEach((entry) => {
              if (!entry.isIntersecting || entry.intersectionRatio < 0.5) return;
              const card = entry.target;
              impressions.unobserve(card);
              const context = carouselContext(card);
              const once = context.rec_id + "|" + card.dataset.aisleSku;
              if (seen.has(once)) return;
              seen.add(once);
              track("impression", Object.assign({ product_id: card.dataset.aisleSku }, context));
            });
          },
          { threshold: [0.5] },
        )
      : null;

  function setUpCarousel(section) {
    if (section.dataset.aisleReady) return;
    section.dataset.aisleReady = "1";
    const list = section.querySelector("[role=list]");
    const controls = section.querySelector("[data-aisle-controls]");
    if (list && controls) {
      const update = () => {
        controls.hidden = list.scrollWidth <= list.clientWidth + 1;
      };
      update();
      window.addEventListener("resize", update, { passive: true });
      controls.addEventListener("click", (event) => {
        const button = event.target.closest("[data-aisle-scroll]");
        if (!button) return;
        list.scrollBy({
          left: Number(button.dataset.aisleScroll) * list.clientWidth * 0.9,
          behavior: reduceMotion ? "auto" : "smooth",
        });
      });
    }
    if (impressions) {
      section.querySelectorAll("[data-aisle-sku]").forEach((card) => impressions.observe(card));
    }
  }

  function onCardClick(event) {
    if (event.type === "auxclick" && event.button !== 1) return;
    const link = event.target.closest("[data-aisle-carousel] a[href]");
    const card = link && link.closest("[data-aisle-sku]");
    if (!card) return;
    const context = carouselContext(card);
    remember(card.dataset.aisleSku, context);
    track("click", Object.assign({ product_id: card.dataset.aisleSku }, context));
    flush(); // keepalive lets the request finish while the next page loads
  }

  // --- Declared storefront events -------------------------------------------------------------

  function declaredFields(element) {
    const data = element.dataset;
    return {
      product_id: data.aisleProductId,
      quantity: data.aisleQuantity,
      price: data.aislePrice,
      order_id: data.aisleOrderId,
      query: data.aisleQuery,
      event_id: data.aisleEventId,
      placement: data.aislePlacement,
      rec_id: data.aisleRecId,
    };
  }

  function onSubmit(event) {
    const form = event.target.closest("form[data-aisle-event]");
    if (!form) return;
    const fields = declaredFields(form);
    const input = form.elements.namedItem("quantity");
    const quantity = input ? parseInt(input.value, 10) || 0 : parseInt(fields.quantity, 10) || 1;
    let type = form.dataset.aisleEvent;
    if (type === "cart_update") {
      const before = parseInt(form.dataset.aisleQuantityBefore, 10) || 0;
      if (quantity === before) return;
      type = quantity > before ? "add_to_cart" : "remove_from_cart";
      fields.quantity = Math.abs(quantity - before);
    } else if (input) {
      fields.quantity = quantity;
    }
    track(type, fields);
    flush();
  }

  function start() {
    document.querySelectorAll("[data-aisle-carousel]").forEach(setUpCarousel);
    document.querySelectorAll("[data-aisle-event]:not(form)").forEach((element) => {
      track(element.dataset.aisleEvent, declaredFields(element));
    });
    document.addEventListener("click", onCardClick);
    document.addEventListener("auxclick", onCardClick);
    document.addEventListener("submit", onSubmit);
    // pagehide, not unload: it fires on mobile and keeps the back-forward cache usable.
    window.addEventListener("pagehide", flush);
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "hidden") flush();
    });
  }

  window.aisle = { loaded: true, track: track, flush: flush, config: config };

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
