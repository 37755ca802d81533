"""gradfix: finds and fixes TensorFlow and Keras code whose variables get no gradient."""

__version__ = "0.1.0"
