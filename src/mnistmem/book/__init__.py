"""The book layer: what the chapters show, read from the committed results through `mnistmem.results` alone.

One module per chapter group, each drawing its figures through `figures` and printing the sentences that
`sentences` builds from the numbers (the rules that decide what the book says, unit-tested on hand-made
summaries):

* `chapter`      — every chapter's first cell: load (or recompute) the results it reads;
* `calibration`  — chapter 2: MNIST's digits and how each definition of a copy was calibrated;
* `recall`       — chapter 2: what each definition catches of damaged copies, and what it wrongly flags;
* `search_page`  — chapter 2b: the in-browser search of the training set;
* `generated`    — chapters 3-5: each model's samples, closest pairs and verdicts;
* `census`       — chapter 6: a million samples per model against all 60,000 digits;
* `scale`        — chapter 6: the training images copied most often, randomness, the scale-up arithmetic;
* `onset`        — chapter 6: when copying begins (training-set size × training time), same-noise pairs;
* `dose`         — chapter 6: how duplication drives copying (stroke canaries planted 1 to 1,000 times);
* `storage`      — chapter 7: what the weights could hold and what a search of the model finds;
* `extraction`   — chapter 7: getting a training image out without the training data;
* `unlearning`   — chapter 8 (its facts in `unlearning_facts`, its live control in `unlearning_widget`);
* `law`          — chapter 9: the legal tests, each answered by a measurement;
* `summary`      — chapters 1 and 10 and the appendix: the answers gathered from every experiment;
* `common`, `sentences`, `figures`, `display`, `widgets` — shared names and formats, the sentence rules,
  plotly figures and image grids, glue and HTML output, and the note a static page shows instead of a widget.

Nothing here trains, samples or searches for the book's numbers; the pipeline (`mnistmem.experiments`) does.
"""
