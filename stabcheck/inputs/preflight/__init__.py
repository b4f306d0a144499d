"""Checks before any training: do the data, the labels, the loss, the model's outputs and
the class weights fit together? Each broken rule is an ``InputError`` (exit 2) that says what
was found and what to do; softer concerns come back as warnings for the report.

One module per thing checked: ``losses`` (the task and the labels against the loss),
``outputs`` (the model's input shape and output layer against the data and the loss),
``weights`` (class weights, and the weights that conflict with them) and ``arrays`` (the
data arrays themselves: finite inputs, one label per sample).
"""
