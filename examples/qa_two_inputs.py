"""A question-answering model with two inputs.

A reference text and a question, each a sequence of word ids, are embedded and encoded by their
own LSTM; the two codes are concatenated and a softmax over a small answer vocabulary picks a
one-word answer. Data can be given as a list (in input order) or as a dict keyed by input name.

Run: python examples/qa_two_inputs.py [output folder]
Set PLEXUS_EXAMPLES_SMALL=1 for a quick run on tiny data (the test suite does).
"""
import os
import sys

import numpy as np

import plexus as keras
from plexus import Input, layers
from plexus.models import Model

OUT = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PLEXUS_EXAMPLES_OUT", ".")
SMALL = os.environ.get("PLEXUS_EXAMPLES_SMALL") == "1"
num_samples, max_length, epochs = (32, 12, 1) if SMALL else (1000, 100, 10)

text_vocabulary_size = 10000
question_vocabulary_size = 10000
answer_vocabulary_size = 500

keras.utils.set_random_seed(0)

# The reference text: word ids -> 64-d vectors -> one 32-d code.
text_input = Input(shape=(None,), dtype="int32", name="text")
embedded_text = layers.Embedding(text_vocabulary_size, 64)(text_input)
encoded_text = layers.LSTM(32)(embedded_text)

# The question: its own embedding and a smaller LSTM.
question_input = Input(shape=(None,), dtype="int32", name="question")
embedded_question = layers.Embedding(question_vocabulary_size, 32)(question_input)
encoded_question = layers.LSTM(16)(embedded_question)

# Join the two codes and pick an answer word.
concatenated = layers.concatenate([encoded_text, encoded_question], axis=-1)
answer = layers.Dense(answer_vocabulary_size, activation="softmax")(concatenated)

model = Model([text_input, question_input], answer)
model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["acc"])
model.summary()

# Random data of the right shapes.
text = np.random.randint(1, text_vocabulary_size, size=(num_samples, max_length))
question = np.random.randint(1, question_vocabulary_size, size=(num_samples, max_length))
answers = keras.utils.to_categorical(
    np.random.randint(0, answer_vocabulary_size, size=num_samples), answer_vocabulary_size)

verbose = 0 if SMALL else "auto"
# Inputs as a list, in the order of Model(inputs=[...]) ...
model.fit([text, question], answers, epochs=epochs, batch_size=128, verbose=verbose)
# ... or as a dict keyed by the names given to Input(name=...).
history = model.fit({"text": text, "question": question}, answers, epochs=epochs,
                    batch_size=128, verbose=verbose)
print("history keys:", sorted(history.history))

os.makedirs(OUT, exist_ok=True)
keras.utils.plot_model(model, os.path.join(OUT, "qa_two_inputs.png"), show_shapes=True)
print("plot saved in", os.path.abspath(OUT))
