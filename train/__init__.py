"""Training side of cifar-edge: data layer, models, training and evaluation.

Importing this package is cheap: TensorFlow is imported only by the modules
that train or evaluate.
"""
