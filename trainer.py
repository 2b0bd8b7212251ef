"""The training loop shared by every phase of ATM-VFI.

`Trainer` owns the optimizer (AdamW), the learning-rate curve (cosine with linear warmup, one
value per optimizer step), mixed precision, validation, TensorBoard logging, checkpoints and
resumption, single-process or under torchrun (DDP). Subclasses change only where batches come
from (`epoch_data`) and what is minimised (`losses`); see finetune_trainer.py. The settings
(`TrainConfig`), the curve, checkpoint files, processes and cores, and validation's metrics and
pictures live in `network.training`.
"""
import logging
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from timm.utils import ModelEmaV3
from torch.utils.data import DataLoader, Dataset, Subset
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from dataset import ShardedSampler
from loss import laplacian_loss, warping_loss
from network import (VARIANTS, CheckpointError, InputPadder, Network, NetworkConfig, UserError,
                     autocast, load_model_checkpoint)
from network.inference import PAD_DIVISOR
from network.scratch_init import init_for_motion
from network.training import (Distributed, MetricSums, TrainConfig, batch_psnr,
                              check_run_folders, checkpoints_to_keep, end_point_error,
                              latest_checkpoint, learning_rate, rng_state, save_atomic,
                              seed_everything, set_rng_state, share_cores, usable_cores,
                              validation_images)

log = logging.getLogger(__name__)


@dataclass
class DataSource:
    """A dataset and how to batch it. Training: batch_size samples per optimizer step, split
    across processes; validation: batch_size per process."""

    dataset: Dataset
    batch_size: int
    name: str                  # "vimeo" | "known-motion" | "x4k" | "snufilm"


@dataclass
class EpochData:
    """What one epoch trains and validates on."""

    train: DataSource
    val: DataSource | None
    checkpoint_prefix: str = ""  # start of the checkpoint file names of this epoch
    val_tag: str = "val"         # TensorBoard section of this epoch's validation


def fused_adamw(device: torch.device) -> bool | None:
    """True where PyTorch has a fused AdamW kernel for `device` (CPU, CUDA, MPS); None: its
    default."""
    return True if device.type in ("cpu", "cuda", "mps") else None


class Trainer:
    """Trains one phase: `Trainer(config, train_source, val_source).fit()`.

    network: the architecture to build; None: the variant named by config.model_type.
    Construction acts on the whole process: it sets torch's intra-op threads (unless
    OMP_NUM_THREADS is set), reseeds Python's, NumPy's and torch's random generators with
    config.seed, joins the process group under torchrun and, on the main process, opens the
    TensorBoard writer (an events file in config.log_dir); fit() closes the writer and leaves
    the process group.
    """

    def __init__(self, config: TrainConfig, train: DataSource, val: DataSource | None = None,
                 network: NetworkConfig | None = None):
        self.config = config
        self.network_config = network or VARIANTS[config.model_type]
        self.train_source, self.val_source = train, val
        self.dist = Distributed.from_env()
        # Checked on every process before they join: an error is the same everywhere.
        for source in self.train_sources():
            if source.batch_size % self.dist.world_size:
                raise UserError(f"the {source.name} batch size {source.batch_size} (all processes "
                                f"together) is not divisible by the {self.dist.world_size} "
                                "processes")
        earlier_logs = check_run_folders(config)
        self.device = self.dist.setup(config.device)
        local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", self.dist.world_size))
        self.num_workers, threads = share_cores(self.device, config.num_workers, local_processes)
        if "OMP_NUM_THREADS" not in os.environ:      # an explicit setting is the user's choice
            torch.set_num_threads(threads)
        log.info("%d DataLoader workers, %d compute threads (of %d usable cores)",
                 self.num_workers, torch.get_num_threads(), usable_cores())
        seed_everything(config.seed)                       # same initial weights on every rank
        self.raw_model = self._build_model()
        # The fused kernel: the same AdamW update in one pass over each tensor (lite on one CPU
        # core: 12-15 ms per step instead of 35 for the multi-tensor loop).
        self.optimizer = torch.optim.AdamW(self.raw_model.parameters(), lr=config.init_lr,
                                           weight_decay=config.weight_decay,
                                           fused=fused_adamw(self.device))
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=config.amp == "fp16")
        self.step = 0                                      # optimizer steps taken
        self.position = (0, 0)                             # (epoch, batches done in it) to run next
        self.epoch_metrics, self.window_metrics = MetricSums(), MetricSums()
        # (val set, PSNR, file) of what this run, and the runs it resumes, saved and kept
        self._saved: list[tuple[str, float, Path]] = []
        self.total_steps = sum(self.steps_in_epoch(e) for e in range(config.epochs))
        resumed_average = None                             # moving-average weights resumed
        if config.resume:
            resumed_average = self._resume()
        elif config.init_ckpt is not None:
            self._initialise(config.init_ckpt)
        elif config.scratch_init in ("motion", "attention"):
            init_for_motion(self.raw_model, attention=config.scratch_init == "attention")
        self.average = None                 # with config.ema: what validation and saving see
        if config.ema:
            # decay min(config.ema, (1 + t) / (10 + t)) at the update after step t (0-based), so
            # that the first steps do not tie the average to the initial weights: timm's warm-up
            # decay 1 - (1 + s / 9)^-1 with s = t + 1, the steps taken (update_after_step -1).
            self.average = ModelEmaV3(self.raw_model, decay=config.ema, update_after_step=-1,
                                      use_warmup=True, warmup_gamma=9, warmup_power=1,
                                      exclude_buffers=True)
            self.average.module.requires_grad_(False)
            if resumed_average is not None:
                self.average.module.load_state_dict(resumed_average)
        self.model = self.raw_model
        if self.dist.world_size > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            # Gradients live in DDP's buckets (no copy per step). The depthwise convolutions'
            # [C, 1, 3, 3] weights get gradients whose stride differs only along the size-1
            # dimension, the same memory layout, which DDP still reports at every step.
            warnings.filterwarnings("ignore", message="Grad strides do not match bucket view")
            self.model = DistributedDataParallel(self.raw_model, device_ids=ids,
                                                 gradient_as_bucket_view=True)
        if config.compile:       # the training forward only: validation stays eager
            self.model = torch.compile(self.model, dynamic=False)
        self.writer = None
        if self.dist.is_main:
            # Resuming drops what the stopped run logged after its checkpoint; a new run drops
            # what an earlier one left in the folder (TensorBoard hides it; the files stay).
            purge_step = self.step + 1 if config.resume else 1 if earlier_logs else None
            if earlier_logs:
                log.warning("--log_dir %s holds TensorBoard logs of an earlier run: this run's "
                            "curves replace them", config.log_dir)
            self.writer = SummaryWriter(config.log_dir, purge_step=purge_step)

    # --- what subclasses change ------------------------------------------------------------

    def epoch_data(self, epoch: int) -> EpochData:
        """Training and validation data of `epoch`."""
        return EpochData(self.train_source, self.val_source)

    def train_sources(self) -> tuple[DataSource, ...]:
        """Every training source that `epoch_data` hands out."""
        return (self.train_source,)

    def losses(self, out: dict, gt: Tensor) -> dict[str, Tensor]:
        """Weighted loss terms of one batch; their sum is minimised. out: the network's output
        dict; gt: [B, 3, H, W]."""
        config = self.config
        return {"lap_loss": config.lap_weight * laplacian_loss(out["I_t"], gt, config.lap_levels),
                "warping_loss": config.warp_weight * warping_loss(out["im_t_list"], gt)}

    # --- set-up ----------------------------------------------------------------------------

    def _build_model(self) -> Network:
        config = self.config
        model = Network(self.network_config, global_motion=config.global_motion,
                        ensemble_global_motion=False)
        count = sum(p.numel() for p in model.parameters())
        log.info("ATM-VFI %s, phase %d: %.2f M parameters", model.variant, config.phase,
                 count / 1e6)
        if config.freeze == "local":
            model.set_local_motion_trainable(False)
        elif config.freeze == "global":
            model.set_global_motion_trainable(False)
        return model.to(self.device)

    def _initialise(self, path: Path) -> None:
        """Weights from `path` (any layout network.load_model_checkpoint reads); its AdamW state
        too when config.load_optimizer and the file has one."""
        extra = load_model_checkpoint(self.raw_model, path, strict=True)
        log.info("initialised from %s", path)
        for key, value in (extra.get("meta_data") or {}).items():
            if key != "train metric":
                log.info("  %s: %s", key, value)
        state = extra.get("optimizer_state_dict")
        if not self.config.load_optimizer:
            log.info("fresh optimizer (warmup %d steps)", self.config.warmup)
        elif not state or not state.get("param_groups"):
            log.warning("%s holds no optimizer state: fresh optimizer", path)
        else:
            self._load_optimizer_state(state, path)
            for group in self.optimizer.param_groups:
                group["weight_decay"] = self.config.weight_decay
            log.info("using the saved optimizer state (warmup %d steps)", self.config.warmup)

    def _load_optimizer_state(self, state: dict, path: Path) -> None:
        params = list(self.raw_model.parameters())
        ids = [i for group in state["param_groups"] for i in group["params"]]
        moments = state.get("state", {})
        mismatch = len(ids) != len(params) or any(
            i in moments and moments[i]["exp_avg"].shape != p.shape for i, p in zip(ids, params))
        if mismatch:
            raise CheckpointError(f"the optimizer state in {path} does not fit this model "
                                  f"({len(ids)} saved, {len(params)} parameters); pass "
                                  "--no-load_optimizer")
        self.optimizer.load_state_dict(state)

    def _resume(self) -> dict[str, Tensor] | None:
        """Restore weights, optimizer, position, metrics and RNGs from the latest checkpoint;
        returns the moving-average weights it holds (saved with --ema), else None."""
        folder = self.config.model_checkpoints
        path = latest_checkpoint(folder)
        if path is None:
            raise UserError(f"--resume: no checkpoint (*epoch_<e>_step_<s>*.pt) in {folder}")
        extra = load_model_checkpoint(self.raw_model, path, strict=True)
        if "position" not in extra:
            raise UserError(f"--resume: {path} was not written by this trainer")
        saved_phase = extra["meta_data"].get("phase")
        if saved_phase != self.config.phase:
            raise UserError(f"--resume: {path} is from phase {saved_phase}, not phase "
                            f"{self.config.phase}")
        self._report_changed_settings(extra["meta_data"], mid_epoch=bool(extra["position"][1]))
        average = None
        if "trained_state_dict" in extra:     # saved with --ema: model_state_dict is the average
            average = {k: v.clone() for k, v in self.raw_model.state_dict().items()}
            self.raw_model.load_state_dict(extra["trained_state_dict"])
        self.optimizer.load_state_dict(extra["optimizer_state_dict"])
        if extra["scaler"]:
            self.scaler.load_state_dict(extra["scaler"])
        self.step, self.position = extra["step"], tuple(extra["position"])
        self._resume_position_at_this_batch_size(extra.get("position_samples"))
        if self.dist.is_main:                  # the saved sums cover every process
            running = {name: MetricSums(**sums) for name, sums in extra["running_metrics"].items()}
            # Checkpoints written before 2026-12-07 counted a step once per process.
            if extra.get("running_metrics_per") != "step":
                processes = extra["meta_data"].get("world_size", 1)
                running = {name: sums.scaled(1 / processes) for name, sums in running.items()}
            self.epoch_metrics, self.window_metrics = running["epoch"], running["window"]
        set_rng_state(extra["rng"])
        self._saved = [(tag, psnr, folder / name) for tag, psnr, name
                       in extra.get("saved_checkpoints", []) if (folder / name).is_file()]
        log.info("resuming from %s at step %d (epoch %d, batch %d)", path, self.step,
                 *self.position)
        return average

    def _resume_position_at_this_batch_size(self, samples_done: int | None) -> None:
        """Re-express the resumed position in batches of this run's size, when the stopped
        run took `samples_done` samples of its epoch in batches of another size: the epoch
        goes on after them, skipping none (the samples of a partial batch are trained again;
        so is a whole batch when fewer than one new batch were left)."""
        epoch, batches = self.position
        if not batches or samples_done is None:
            return
        batch_size = self.epoch_data(epoch).train.batch_size
        if samples_done != batches * batch_size:
            steps = self.steps_in_epoch(epoch)
            self.position = (epoch, min(samples_done // batch_size, steps - 1))
            log.info("epoch %d: the stopped run had trained on %d of its samples; it goes on "
                     "after %d batches of %d", epoch, samples_done, self.position[1], batch_size)

    def _report_changed_settings(self, saved: dict, mid_epoch: bool) -> None:
        """Warn when --resume goes on with other settings than the checkpoint's run (allowed:
        e.g. more --epochs to train longer); `mid_epoch`: the run stopped inside an epoch."""
        config = self.config
        changed = [f"{flag} {saved[key]} -> {now}" for flag, key, now in (
            ("--batch_size", "batch_size", config.batch_size),
            ("--epochs", "epoch", config.epochs),
            ("--init_lr", "initial learning rate", config.init_lr),
            ("--last_lr", "final learning rate", config.last_lr),
            ("--warmup", "warmup step", config.warmup),
            ("--lr_hold", "lr_hold", config.lr_hold),
            ("--weight_decay", "weight decay", config.weight_decay),
            ("--clip_grad", "clip_grad", config.clip_grad), ("--ema", "ema", config.ema),
            ("--amp", "amp", config.amp), ("--lap_weight", "lap_weight", config.lap_weight),
            ("--lap_levels", "lap_levels", config.lap_levels),
            ("--warp_weight", "warp_weight", config.warp_weight),
            ("--seed", "seed", config.seed)) if saved.get(key, now) != now]
        if changed:
            log.warning("--resume with settings other than the checkpoint's (%s): the run goes on "
                        "with the new ones, its learning-rate curve and epochs recomputed%s",
                        ", ".join(changed), "; another --seed draws the rest of this epoch in "
                        "another order, so some of its samples come twice and others not at all"
                        if saved.get("seed", config.seed) != config.seed and mid_epoch else "")

    # --- data ------------------------------------------------------------------------------

    def _sampler(self, source: DataSource, train: bool) -> ShardedSampler:
        return ShardedSampler(len(source.dataset), self.dist.rank, self.dist.world_size,
                              shuffle=train, seed=self.config.seed, drop_last=train)

    def steps_in_epoch(self, epoch: int) -> int:
        source = self.epoch_data(epoch).train
        per_rank = source.batch_size // self.dist.world_size
        steps = self._sampler(source, train=True).samples_per_epoch() // per_rank
        if steps == 0:
            raise UserError(f"the {source.name} training set has {len(source.dataset)} samples, "
                            f"fewer than one batch of {source.batch_size}")
        return steps

    def _loader(self, source: DataSource, epoch: int, skip_batches: int,
                train: bool) -> DataLoader:
        dataset, batch_size = source.dataset, source.batch_size
        if train:
            batch_size //= self.dist.world_size
            if hasattr(dataset, "set_epoch"):
                dataset.set_epoch(epoch)
        elif self.config.val_samples:
            dataset = Subset(dataset, range(min(self.config.val_samples, len(dataset))))
        sampler = self._sampler(DataSource(dataset, batch_size, source.name), train)
        sampler.set_epoch(epoch, skip_batches * batch_size)
        worker_seed = (self.config.seed * 1_000_003 + epoch) * 1009 + self.dist.rank
        generator = torch.Generator().manual_seed(worker_seed % 2**63)
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=train,
                          num_workers=self.num_workers, generator=generator,
                          pin_memory=self.device.type == "cuda")

    # --- the loop --------------------------------------------------------------------------

    def fit(self) -> None:
        """Train from the current position to the last epoch or config.max_steps."""
        try:
            self._run()
        finally:
            if self.writer is not None:
                self.writer.close()
            if dist.is_initialized():
                dist.destroy_process_group()

    def _run(self) -> None:
        config = self.config
        start_epoch, skip = self.position
        if config.max_steps and self.step >= config.max_steps:
            log.info("already at step %d of --max_steps %d", self.step, config.max_steps)
            return
        if start_epoch >= config.epochs:
            log.info("already at epoch %d, past --epochs %d: nothing to train", start_epoch,
                     config.epochs)
            return
        for epoch in range(start_epoch, config.epochs):
            data = self.epoch_data(epoch)
            steps = self.steps_in_epoch(epoch)
            if skip == 0:
                self.epoch_metrics = MetricSums()
            log.info("epoch %d/%d: %s, %d steps, lr %.3e", epoch, config.epochs, data.train.name,
                     steps, self.learning_rate(self.step))
            self.model.train()
            loader = self._loader(data.train, epoch, skip, train=True)
            # Counted by hand after each step, so that it shows the step just taken while
            # validation runs or when --max_steps stops the run; closed before any message
            # that follows (an error, "interrupted").
            with tqdm(total=steps, initial=skip, desc=f"epoch {epoch}",
                      disable=not self.dist.is_main, dynamic_ncols=True) as bar:
                for batch_index, batch in enumerate(loader, start=skip):
                    metrics = self.train_step(batch)
                    # Each step counts once whatever the number of processes (a resumed run
                    # may have another): every process adds its share of the step's means.
                    share = 1 / self.dist.world_size
                    for sums in (self.epoch_metrics, self.window_metrics):
                        sums.add({name: value * share for name, value in metrics.items()}, share)
                    bar.set_postfix(loss=f"{metrics['loss']:.4f}",
                                    psnr=f"{metrics['psnr']:.2f}", refresh=False)
                    bar.update()
                    epoch_done = batch_index + 1 == steps
                    self.position = (epoch + 1, 0) if epoch_done else (epoch, batch_index + 1)
                    if self.step % config.log_every == 0:
                        self._log_training()
                    stop = bool(config.max_steps) and self.step >= config.max_steps
                    if epoch_done or stop or (config.val_every
                                              and self.step % config.val_every == 0):
                        self._validate_and_save(epoch, data)
                    if stop:
                        return
            skip = 0

    def train_step(self, batch: list[Tensor]) -> dict[str, float]:
        """One optimizer step on batch = [im0, gt, im1, ...] ([B, 3, H, W] each); returns the
        step's metrics (psnr, the loss terms, loss, grad_norm, lr)."""
        # non_blocking only from CUDA's pinned memory: MPS may read pageable memory once freed
        im0, gt, im1 = (t.to(self.device, non_blocking=self.device.type == "cuda")
                        for t in batch[:3])                                    # + true flows
        lr = self.learning_rate(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with autocast(self.device, self.config.amp):
            out = self.model(im0, im1)
        terms = self.losses(out, gt)
        loss = sum(terms.values())
        psnr = batch_psnr(out["I_t"].detach(), gt).mean()
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)        # no-op without fp16's scaler
        # The total norm before clipping; clipping scales every gradient by one factor.
        grad_norm = nn.utils.clip_grad_norm_(self.raw_model.parameters(),
                                             self.config.clip_grad or math.inf)
        # The step's numbers in one transfer, once the backward is queued: on a GPU each
        # .item() waits for all queued work.
        numbers = torch.stack([t.detach().float() for t in
                               (psnr, *terms.values(), loss, grad_norm)]).tolist()
        values = dict(zip(("psnr", *terms, "loss", "grad_norm"), numbers))
        # Non-finite gradients (fp16's overflow steps aside, which the scaler skips) stop the run
        # too: under torchrun they are what every process sees when one process's loss is not
        # finite, as the gradients are averaged, so all stop together instead of waiting.
        finite_gradients = math.isfinite(values["grad_norm"])
        broken = ("loss" if not math.isfinite(values["loss"]) else
                  None if finite_gradients or self.config.amp == "fp16" else "gradient norm")
        if broken:
            value = values["loss" if broken == "loss" else "grad_norm"]
            raise UserError(f"the {broken} is {value} at step {self.step + 1}: training "
                            "diverged (the weights are those before this step; --resume "
                            "continues from the last checkpoint, e.g. with a lower --init_lr "
                            "or --clip_grad)")
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.step += 1
        if self.average is not None:
            self.average.update(self.raw_model, step=self.step)
        if not finite_gradients:   # fp16: overflow steps are skipped
            del values["grad_norm"]
        return {**values, "lr": lr}

    @property
    def validated_model(self) -> Network:
        """The weights validated and saved as model_state_dict: the moving average with
        config.ema, else the trained weights."""
        return self.raw_model if self.average is None else self.average.module

    def learning_rate(self, step: int) -> float:
        """lr of optimizer step `step` (0-based) of this run."""
        config = self.config
        return learning_rate(step, config.init_lr, config.last_lr, self.total_steps,
                             config.warmup, config.lr_hold)

    def _log_training(self) -> None:
        means = self.window_metrics.means(self.dist)
        self.window_metrics = MetricSums()
        if self.writer is not None:
            for name, value in means.items():
                self.writer.add_scalar(f"train/{name}", value, self.step)

    @torch.no_grad()
    def validate(self, source: DataSource, tag: str = "val") -> dict[str, float]:
        """Per-sample means over `source`: PSNR of the unpadded prediction and of the plain
        average of the two input frames (`psnr_average`, the trivial answer to beat), the loss
        terms (computed on the frames padded to multiples of 64, the ground truth included)
        and, for sets with true flows (`dataset.KnownMotionTriplet`), the end-point errors of
        opt_flow_0/opt_flow_1 in pixels over the pixels marked valid (`epe_t0`, `epe_t1`).
        The first batch is drawn to TensorBoard (`validation_images`)."""
        model = self.validated_model.eval()
        sums = MetricSums()
        loader = self._loader(source, 0, 0, train=False)
        with tqdm(loader, desc=tag, leave=False, disable=not self.dist.is_main) as batches:
            for index, batch in enumerate(batches):
                im0, gt, im1, *truth = (t.to(self.device) for t in batch)
                padder = InputPadder(im0.shape, divisor=PAD_DIVISOR)
                padded0, padded1, gt_padded = padder.pad(im0, im1, gt)
                with autocast(self.device, self.config.amp):
                    out = model(padded0, padded1)
                pred = padder.unpad(out["I_t"]).float()
                count = gt.shape[0]
                terms = self.losses(out, gt_padded)
                values = {"psnr": batch_psnr(pred, gt).sum().item(),
                          "psnr_average": batch_psnr((im0 + im1) / 2, gt).sum().item()}
                flows = [padder.unpad(out[key]).float() for key in ("opt_flow_0", "opt_flow_1")]
                if truth:
                    true_flow, valid = truth
                    for name, flow, true in zip(("epe_t0", "epe_t1"), flows, true_flow.split(2, 1)):
                        values[name] = end_point_error(flow, true, valid).sum().item()
                terms = {name: term.item() * count for name, term in terms.items()}
                sums.add({**values, **terms}, count)
                if index == 0 and self.writer is not None:
                    mask = padder.unpad(out["occ_mask1"]).float()
                    true_flow = truth[0] if truth else None
                    for name, image in validation_images(im0, im1, pred, gt, flows, mask,
                                                         true_flow).items():
                        self.writer.add_image(f"{tag}/{name}", image, self.step)
        self.raw_model.train()
        return sums.means(self.dist)

    def _validate_and_save(self, epoch: int, data: EpochData) -> None:
        running = {"epoch": self.epoch_metrics.merged(self.dist),
                   "window": self.window_metrics.merged(self.dist)}
        train_metric = running["epoch"].means(Distributed())
        train_metric.pop("lr", None)
        val_metric = self.validate(data.val, data.val_tag) if data.val is not None else {}
        if not self.dist.is_main:
            return
        for name, value in val_metric.items():
            self.writer.add_scalar(f"{data.val_tag}/{name}", value, self.step)
        self.writer.flush()
        summary = ", ".join(f"{k} {v:.5g}" for k, v in train_metric.items())
        log.info("step %d: train %s", self.step, summary)
        if val_metric:
            log.info("step %d: %s %s", self.step, data.val_tag,
                     ", ".join(f"{k} {v:.5g}" for k, v in val_metric.items()))
        name = f"{data.checkpoint_prefix}epoch_{epoch}_step_{self.step}"
        if "psnr" in val_metric:
            name += f"_psnr_{round(val_metric['psnr'], 4)}"
        path = self.config.model_checkpoints / f"{name}.pt"
        self._saved.append((data.val_tag, val_metric.get("psnr", -math.inf), path))
        save_atomic(self._checkpoint(train_metric, val_metric, running), path)
        log.info("saved %s", path)
        self._remove_old_checkpoints()

    def _remove_old_checkpoints(self) -> None:
        """With --keep_checkpoints N: delete what this run (or a run it resumed) saved except
        the newest N and the best per validation set (`checkpoints_to_keep`). Files it did not
        write stay."""
        if not self.config.keep_checkpoints:
            return
        kept = checkpoints_to_keep([entry[:2] for entry in self._saved],
                                   self.config.keep_checkpoints)
        for i, (*_, path) in enumerate(self._saved):
            if i not in kept:
                path.unlink(missing_ok=True)
                log.info("removed %s (--keep_checkpoints %d)", path, self.config.keep_checkpoints)
        self._saved = [self._saved[i] for i in sorted(kept)]

    def _checkpoint(self, train_metric: dict, val_metric: dict,
                    running: dict[str, MetricSums]) -> dict:
        """The authors' layout plus what resuming needs (running: the unfinished epoch and
        logging window, all processes together)."""
        config = self.config
        epoch, batches_done = self.position
        meta_data = {
            "epoch": config.epochs, "batch_size": config.batch_size,
            "gradient accumulation": False, "optimizer": "AdamW",
            "weight decay": config.weight_decay, "initial learning rate": config.init_lr,
            "final learning rate": config.last_lr,
            "learning rate scheduler": "CosineAnnealingLR", "warmup step": config.warmup,
            "use gradient clipping": bool(config.clip_grad), "clip_grad": config.clip_grad,
            "lr_hold": config.lr_hold, "ema": config.ema, "train metric": train_metric,
            "phase": config.phase, "model_type": self.network_config.name,
            "global_motion": config.global_motion, "amp": config.amp,
            "world_size": self.dist.world_size, "total steps": self.total_steps,
            "seed": config.seed, "lap_weight": config.lap_weight,
            "lap_levels": config.lap_levels, "warp_weight": config.warp_weight,
        }
        checkpoint = {
            "model_state_dict": self.validated_model.state_dict(),
            "optimizer_state_dict": self.optimizer.state_dict(),
            "meta_data": meta_data, "train_metric": train_metric, "val_metric": val_metric,
            "step": self.step, "position": list(self.position),
            # samples of the epoch done, which a resumed run with another batch size skips
            "position_samples": batches_done * self.epoch_data(epoch).train.batch_size,
            "scaler": self.scaler.state_dict(), "rng": rng_state(),
            "running_metrics": {name: vars(sums) for name, sums in running.items()},
            "running_metrics_per": "step",     # each step counted once, whatever the processes
            # what --keep_checkpoints weighs, so that a resumed run goes on pruning them
            "saved_checkpoints": [[tag, psnr, path.name] for tag, psnr, path in self._saved],
        }
        if self.average is not None:          # the weights AdamW trains, for --resume
            checkpoint["trained_state_dict"] = self.raw_model.state_dict()
        return checkpoint
