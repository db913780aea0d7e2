"""Aisle: real-time personalization for Django shops (the apps are merch and recs; settings in aisle.conf)."""
