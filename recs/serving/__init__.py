"""The render path: recs.serving.recommend.recommend(context), shared by the API and the template tag."""
