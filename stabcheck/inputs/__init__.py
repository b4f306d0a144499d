"""Parent-side loading: data readers, sampling, model specs, class weights, preflight
checks. Never imports TensorFlow or Keras."""
