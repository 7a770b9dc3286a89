"""What the course's trainers return: one named type per kind of training history, with documented fields.

Every trainer returns its model(s) and a history, e.g. `vae, history = vae.train_vae(data)`. The history is
a dataclass, so its fields are declared and typed (`history.train_nelbo`), and it is also a read-only
mapping, the notebook-friendly view: `history["train_nelbo"]`, `history.keys()`, `"test_acc" in history`,
`dict(history)` and `plots.plot_history(history)` work as they did when trainers returned plain dicts.

  History                     the base: declared fields + the read-only dict view
  FitHistory, ClassifierHistory   train.fit (+ the metrics of eval_fn) and cnn.train_classifier
  JudgeHistory                judges.train_judge
  ManualMLPHistory            backprop.train_manual_mlp (chapter 1's hand-written loop)
  GANHistory                  gan.train_gan
  VAEHistory                  vae.train_vae
  TinyGPTHistory              text.train_tiny_gpt
  ConditionalHistory          conditional.train_conditional
  CaptionerHistory            captioner.train_captioner
  CodecHistory, DiffusionHistory, TextToImageHistory   chapter 7's latent VAE, denoiser, whole recipe
  ReflowHistory               reflow.train_reflow_student (chapter 8)
  VAERun                      each model of vae_experiments.compare_conv_mlp (chapter 4)
  ShippedFile                 each weight file a `textimg-lessons train ...` command writes
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields


class History(Mapping):
    """Base of every named history: the dataclass fields, readable as `h.field` and as `h["field"]`.

    The mapping view is read-only (a history records what happened); its keys are the fields in declared
    order (FitHistory adds the metrics whose names are only known at run time).
    """

    def _view(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.metadata.get("hidden")}

    def __getitem__(self, key: str):
        view = self._view()
        if key not in view:
            raise KeyError(f"{type(self).__name__} has no {key!r}; it has {', '.join(view)}.")
        return view[key]

    def __iter__(self):
        return iter(self._view())

    def __len__(self) -> int:
        return len(self._view())

    def __setitem__(self, key, value):
        raise TypeError(f"a {type(self).__name__} is a record of a finished training run and cannot be changed; "
                        f"copy it first (`d = dict(history)`) to add {key!r}.")


def _hidden():
    """A field shown through its own keys (see FitHistory.evals), not as one key of the mapping view."""
    return field(default_factory=dict, metadata={"hidden": True})


@dataclass(eq=False)
class FitHistory(History):
    """train.fit: per-epoch mean training loss, each eval_fn metric per epoch, and the time taken."""

    loss: list                      # mean training loss per epoch
    seconds: float                  # wall time of training and evaluation
    cpu_seconds: float              # CPU time of training
    evals: dict = _hidden()         # metric name -> one value per epoch (from eval_fn); also keys of the view

    def _view(self) -> dict:
        # the historical order: loss, the metrics, then the times
        view = {"loss": self.loss, **self.evals, "seconds": self.seconds, "cpu_seconds": self.cpu_seconds}
        view.update({f.name: getattr(self, f.name) for f in fields(self)
                     if f.name not in view and not f.metadata.get("hidden")})
        return view


@dataclass(eq=False)
class ClassifierHistory(FitHistory):
    """cnn.train_classifier: fit's history plus the final test accuracy."""

    test_acc_final: float = float("nan")   # accuracy on the test set after the last epoch


@dataclass(eq=False)
class JudgeHistory(ClassifierHistory):
    """judges.train_judge: the classifier's history and what the judge's file records."""

    test_acc: float = float("nan")  # the final test accuracy (the judge is evaluated once, at the end)
    dataset: str = ""               # "mnist" or "fashion_mnist"
    source: str = ""                # where the training images came from
    num_epochs: int = 0             # passes over the training set


@dataclass(eq=False)
class ManualMLPHistory(History):
    """backprop.train_manual_mlp: per-epoch lists and the training time."""

    loss: list                      # mean training loss per epoch
    train_acc: list                 # accuracy on the training set after each epoch
    test_acc: list                  # accuracy on the test set after each epoch
    seconds: float                  # training wall time


@dataclass(eq=False)
class GANHistory(History):
    """gan.train_gan: per-epoch means, per-step losses, a sample grid per epoch."""

    d_loss: list                    # discriminator (critic) loss, mean per epoch
    g_loss: list                    # generator loss, mean per epoch
    d_real: list                    # mean D(x) per epoch (a probability, or the critic's score for WGAN-GP)
    d_fake: list                    # mean D(G(z)) per epoch
    d_loss_step: list               # discriminator loss at every step
    g_loss_step: list               # generator loss at every step
    grids: list                     # images from the same noise after every epoch
    kind: str                       # the GAN's kind ("mlp", "dcgan", ...)
    seconds: float = 0.0            # training wall time
    trained_generator: object = None  # with ema_decay: the generator that took the optimiser's steps


@dataclass(eq=False)
class VAEHistory(History):
    """vae.train_vae: negative ELBO in nats per image."""

    train_nelbo: list               # mean over each epoch's batches
    test_nelbo: list                # on the test set, after each epoch (or only the last)
    seconds: float                  # training wall time (evaluations not counted)
    cpu_seconds: float              # CPU time of the same


@dataclass(eq=False)
class TinyGPTHistory(History):
    """text.train_tiny_gpt: losses at step 0 (untrained) and after every eval_every steps."""

    step: list                      # 0, then the step of each evaluation
    train_loss: list                # mean training loss since the last evaluation (nan at step 0)
    val_loss: list                  # validation loss at each step
    train_seconds: float            # training wall time (evaluations not counted)
    val_perplexity: float           # exp of the last validation loss


@dataclass(eq=False)
class ConditionalHistory(History):
    """conditional.train_conditional: adherence during training (only when a judge is given)."""

    step: list                      # step of each evaluation
    adherence: list                 # adherence on the training-family prompts at that step
    seconds: list                   # training seconds so far at that step
    loss: list                      # mean training loss since the last evaluation
    steps_to_target: int | None     # first evaluated step at the recipe's target adherence (None: never)
    seconds_to_target: float | None  # training seconds at that step (None: never)
    encode_seconds: float           # time to encode the captions once
    train_seconds: float            # training wall time


@dataclass(eq=False)
class CaptionerHistory(History):
    """captioner.train_captioner: the loss of every step."""

    loss: list                      # one value per step
    train_seconds: float            # training wall time


@dataclass(eq=False)
class CodecHistory(History):
    """diffusion.train_codec (chapter 7's latent VAE)."""

    loss: list                      # Bernoulli NLL + kl_weight * KL, mean per epoch
    seconds: float                  # training wall time
    cpu_seconds: float              # CPU time of the same


@dataclass(eq=False)
class DiffusionHistory(History):
    """diffusion.train_diffusion: the flow-matching loss."""

    loss: list                      # mean per 100 steps
    step: list                      # the step at the end of each of those rounds
    seconds: float                  # training wall time
    cpu_seconds: float              # CPU time of the same


@dataclass(eq=False)
class TextToImageHistory(History):
    """text_to_image.train_text_to_image: the denoiser's history and the time of the other two stages."""

    codec_seconds: float            # training the latent VAE (0 when a codec was given)
    table_seconds: float            # encoding the captions' token states
    loss: list                      # the denoiser's flow-matching loss, mean per 100 steps
    step: list                      # the step at the end of each of those rounds
    seconds: float                  # the denoiser's training wall time
    cpu_seconds: float              # CPU time of the same


@dataclass(eq=False)
class ReflowHistory(History):
    """reflow.train_reflow_student (chapter 8): the student's loss and what making its pairs cost."""

    loss: list                      # the reflow loss, mean per 50 steps
    pairs_seconds: float            # time to sample the teacher's (noise, z0) pairs
    pairs: int                      # number of those pairs
    seconds: float                  # the student's training wall time
    cpu_seconds: float              # CPU time of the same
    steps: int                      # training steps


@dataclass(eq=False)
class VAERun(History):
    """One model of vae_experiments.compare_conv_mlp (chapter 4): the trained VAE and what it measured."""

    vae: object                     # the trained model (vae.ConvVAE or vae.MLPVAE)
    history: VAEHistory             # its training history
    test_nelbo: float               # test negative ELBO after the last epoch (nats per image)
    iwae_nll: float                 # importance-weighted NLL estimate (nats per image)
    iwae_k: int                     # samples per image for it
    iwae_images: int                # test images it used
    psnr: float                     # reconstruction of the binarised test images (posterior mean)
    ssim: float
    train_seconds: float            # training wall time
    train_cpu_seconds: float        # CPU time of the same
    params: int                     # parameters of the model


@dataclass(eq=False)
class ShippedFile(History):
    """One weight file written by a `textimg-lessons train ...` command, and what its training measured."""

    dataset: str
    file: str                       # the file name, in the --out folder
    seconds: float                  # wall time to make it
    measured: dict = field(default_factory=dict)   # e.g. test accuracy, adherence, chosen steps

    def line(self) -> str:
        """One JSON line for the command's output."""
        import json
        return json.dumps({"dataset": self.dataset, "file": self.file, "seconds": self.seconds, **self.measured},
                          default=str)
