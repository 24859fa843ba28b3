"""``/models/select``: the serializers of the selection's questions and answers (its views are the models')."""
