from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator

import libcst as cst

from gradfix import categories
from gradfix.messages import brief
from gradfix.model import Applicability, Severity
from gradfix.rule import Invalid, Replacement, Report, Rule
from gradfix.static import tapeflow
from gradfix.static.analysis import GradientCall, ModuleAnalysis, TapeBlock
from gradfix.static.sources import Source, resolve_sources


class WrongTapeOrModel(Rule):
    """
    Finds a gradient asked of the wrong tape, or for the wrong loss, when a step uses several
    tapes, losses or models at once (a GAN's generator and discriminator, an actor and a critic):
    `disc_tape.gradient(gen_loss, ...)` where `gen_loss` was computed in `gen_tape`'s block, or
    `gen_tape.gradient(disc_loss, generator.trainable_variables)` where the two losses have
    changed places.

    ## Why gradients vanish

    A tape knows only the operations run inside its own `with` block. Asked for the gradient
    of a loss computed in another tape's block, it finds nothing recorded and returns `None` for
    every variable. Asked for the gradient of a loss that does not depend on the variables given
    (the critic's loss with respect to the actor's variables), it also returns `None`. When both
    losses depend on both models (a GAN whose losses share the discriminator's output), the
    swapped pairing still yields gradients, but each model is trained on the other's objective.

    ## Example

    ```python
    with tf.GradientTape() as gen_tape:
        fake = generator(noise, training=True)
        gen_loss = generator_loss(discriminator(fake, training=True))
    with tf.GradientTape() as disc_tape:
        disc_loss = discriminator_loss(discriminator(images, training=True), discriminator(fake, training=True))
    gen_grads = gen_tape.gradient(gen_loss, generator.trainable_variables)
    disc_grads = gen_tape.gradient(disc_loss, discriminator.trainable_variables)
    ```

    ## Fix

    ```python
    gen_grads = gen_tape.gradient(gen_loss, generator.trainable_variables)
    disc_grads = disc_tape.gradient(disc_loss, discriminator.trainable_variables)
    ```

    The variables asked for stay as they are (they match the name the result is stored under
    and the optimizer it is given to); the tape, or the loss, changes to the one that goes with
    them.

    ## Fix safety

    Changing the tape to the only one that recorded the loss is **safe** where the new tape is
    shown to have recorded the loss with the sources' forward pass and to answer the call: it is
    persistent, or no other gradient call of the function asks it (but one that asks it for a
    loss it did not record, reported too and moved to its own tape) and the call runs once per
    time its block runs (no loop around the call leaves the block outside). Then it changes
    nothing but where the gradient is read from, and the old call could only return `None`.
    When a loop around the call leaves the tape's block outside, the fix is **unsafe**: a tape
    that is not persistent answers one gradient call, and the next turn would raise. No fix
    changes a tape to a non-persistent one that another gradient call of the function asks for
    a loss it recorded.
    Swapping two losses between two gradient calls is **unsafe**: it changes what each model is
    trained on, which is the point, but deserves a look. A fix is offered only when exactly one
    pairing makes sense (one other tape recorded the loss, or two calls whose losses fit each
    other's variables); otherwise the finding stands alone.

    ## When not to fix

    - Two tapes opened in one `with` statement both record everything inside it: the tape
      names do not matter there.
    - A loss computed outside every tape is GF001's business (move it into the tape).
    - Losses and models whose names do not pair up, with gradients that flow: the rule leaves
      the pairing to the author.
    """

    code = "GF012"
    name = "wrong-tape-or-model"
    summary = "Gradient asked of the wrong tape, or for the wrong model's loss"
    applicability = Applicability.SAFE
    categories = (categories.WRONG_TAPE,)

    VALID = [
        # the TensorFlow DCGAN tutorial's step
        """
        import tensorflow as tf

        @tf.function
        def train_step(images, noise):
            with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
                generated_images = generator(noise, training=True)
                real_output = discriminator(images, training=True)
                fake_output = discriminator(generated_images, training=True)
                gen_loss = generator_loss(fake_output)
                disc_loss = discriminator_loss(real_output, fake_output)
            gradients_of_generator = gen_tape.gradient(gen_loss, generator.trainable_variables)
            gradients_of_discriminator = disc_tape.gradient(disc_loss, discriminator.trainable_variables)
            generator_optimizer.apply_gradients(zip(gradients_of_generator, generator.trainable_variables))
            discriminator_optimizer.apply_gradients(zip(gradients_of_discriminator, discriminator.trainable_variables))
        """,
        # separate tapes, each asked for its own loss
        """
        import tensorflow as tf

        def train_step(generator, discriminator, g_opt, d_opt, images, noise):
            with tf.GradientTape() as disc_tape:
                fake = generator(noise, training=True)
                d_loss = tf.reduce_mean(discriminator(fake, training=True)) - tf.reduce_mean(discriminator(images, training=True))
            d_grads = disc_tape.gradient(d_loss, discriminator.trainable_variables)
            d_opt.apply_gradients(zip(d_grads, discriminator.trainable_variables))
            with tf.GradientTape() as gen_tape:
                fake = generator(noise, training=True)
                g_loss = -tf.reduce_mean(discriminator(fake, training=True))
            g_grads = gen_tape.gradient(g_loss, generator.trainable_variables)
            g_opt.apply_gradients(zip(g_grads, generator.trainable_variables))
        """,
        # one tape, two models trained on one loss
        """
        import tensorflow as tf

        def train_step(encoder, decoder, optimizer, x):
            with tf.GradientTape() as tape:
                recon = decoder(encoder(x))
                loss = tf.reduce_mean(tf.square(recon - x))
            variables = encoder.trainable_variables + decoder.trainable_variables
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        """,
        # a gradient penalty: a tape nested in the discriminator's tape
        """
        import tensorflow as tf

        def critic_step(critic, optimizer, real, fake):
            alpha = tf.random.uniform((real.shape[0], 1))
            interpolated = alpha * real + (1.0 - alpha) * fake
            with tf.GradientTape() as disc_tape:
                with tf.GradientTape() as gp_tape:
                    gp_tape.watch(interpolated)
                    scores = critic(interpolated, training=True)
                slopes = tf.norm(gp_tape.gradient(scores, [interpolated])[0], axis=1)
                penalty = tf.reduce_mean(tf.square(slopes - 1.0))
                d_loss = tf.reduce_mean(critic(fake, training=True)) - tf.reduce_mean(critic(real, training=True)) + 10.0 * penalty
            grads = disc_tape.gradient(d_loss, critic.trainable_variables)
            optimizer.apply_gradients(zip(grads, critic.trainable_variables))
        """,
        # a loss computed after every tape closed is GF001's
        """
        import tensorflow as tf

        def train_step(model, optimizer, x, y):
            with tf.GradientTape() as tape:
                logits = model(x)
            loss = tf.reduce_mean(tf.square(logits - y))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
        """,
        # Look-alike: a gradient helper given the right tapes.
        """
import tensorflow as tf

def grads_of(tape, loss, variables):
    return tape.gradient(loss, variables)

def train_step(generator, discriminator, images, noise):
    with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
        fake = generator(noise, training=True)
        gen_loss = -tf.reduce_mean(discriminator(fake, training=True))
        disc_loss = tf.reduce_mean(discriminator(fake, training=True)) - tf.reduce_mean(discriminator(images, training=True))
    disc_grads = grads_of(disc_tape, disc_loss, discriminator.trainable_variables)
    gen_grads = grads_of(gen_tape, gen_loss, generator.trainable_variables)
""",
    ]

    INVALID = [
        # the discriminator's gradient asked of the generator's tape
        Invalid(
            """
            import tensorflow as tf

            def train_step(generator, discriminator, g_opt, d_opt, images, noise):
                with tf.GradientTape() as gen_tape:
                    fake = generator(noise, training=True)
                    gen_loss = -tf.reduce_mean(discriminator(fake, training=True))
                with tf.GradientTape() as disc_tape:
                    disc_loss = tf.reduce_mean(discriminator(fake, training=True)) - tf.reduce_mean(discriminator(images, training=True))
                disc_grads = gen_tape.gradient(disc_loss, discriminator.trainable_variables)
                gen_grads = gen_tape.gradient(gen_loss, generator.trainable_variables)
                d_opt.apply_gradients(zip(disc_grads, discriminator.trainable_variables))
                g_opt.apply_gradients(zip(gen_grads, generator.trainable_variables))
            """,
            """
            import tensorflow as tf

            def train_step(generator, discriminator, g_opt, d_opt, images, noise):
                with tf.GradientTape() as gen_tape:
                    fake = generator(noise, training=True)
                    gen_loss = -tf.reduce_mean(discriminator(fake, training=True))
                with tf.GradientTape() as disc_tape:
                    disc_loss = tf.reduce_mean(discriminator(fake, training=True)) - tf.reduce_mean(discriminator(images, training=True))
                disc_grads = disc_tape.gradient(disc_loss, discriminator.trainable_variables)
                gen_grads = gen_tape.gradient(gen_loss, generator.trainable_variables)
                d_opt.apply_gradients(zip(disc_grads, discriminator.trainable_variables))
                g_opt.apply_gradients(zip(gen_grads, generator.trainable_variables))
            """,
        ),
        # actor and critic losses swapped: the critic's loss does not depend on the actor
        Invalid(
            """
            import tensorflow as tf

            def update(actor, critic, actor_opt, critic_opt, states, actions, returns):
                with tf.GradientTape() as actor_tape, tf.GradientTape() as critic_tape:
                    values = critic(tf.concat([states, actions], axis=1))
                    critic_loss = tf.reduce_mean(tf.square(returns - values))
                    actor_loss = -tf.reduce_mean(critic(tf.concat([states, actor(states)], axis=1)))
                actor_grads = actor_tape.gradient(critic_loss, actor.trainable_variables)
                critic_grads = critic_tape.gradient(actor_loss, critic.trainable_variables)
                actor_opt.apply_gradients(zip(actor_grads, actor.trainable_variables))
                critic_opt.apply_gradients(zip(critic_grads, critic.trainable_variables))
            """,
            """
            import tensorflow as tf

            def update(actor, critic, actor_opt, critic_opt, states, actions, returns):
                with tf.GradientTape() as actor_tape, tf.GradientTape() as critic_tape:
                    values = critic(tf.concat([states, actions], axis=1))
                    critic_loss = tf.reduce_mean(tf.square(returns - values))
                    actor_loss = -tf.reduce_mean(critic(tf.concat([states, actor(states)], axis=1)))
                actor_grads = actor_tape.gradient(actor_loss, actor.trainable_variables)
                critic_grads = critic_tape.gradient(critic_loss, critic.trainable_variables)
                actor_opt.apply_gradients(zip(actor_grads, actor.trainable_variables))
                critic_opt.apply_gradients(zip(critic_grads, critic.trainable_variables))
            """,
        ),
        # a GAN whose losses changed places: gradients flow, but each model learns the other's objective
        Invalid(
            """
            import tensorflow as tf

            def train_step(generator, discriminator, g_opt, d_opt, images, noise):
                with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
                    fake = generator(noise, training=True)
                    real_out = discriminator(images, training=True)
                    fake_out = discriminator(fake, training=True)
                    gen_loss = -tf.reduce_mean(fake_out)
                    disc_loss = tf.reduce_mean(fake_out) - tf.reduce_mean(real_out)
                gen_grads = gen_tape.gradient(disc_loss, generator.trainable_variables)
                disc_grads = disc_tape.gradient(gen_loss, discriminator.trainable_variables)
                g_opt.apply_gradients(zip(gen_grads, generator.trainable_variables))
                d_opt.apply_gradients(zip(disc_grads, discriminator.trainable_variables))
            """,
            """
            import tensorflow as tf

            def train_step(generator, discriminator, g_opt, d_opt, images, noise):
                with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
                    fake = generator(noise, training=True)
                    real_out = discriminator(images, training=True)
                    fake_out = discriminator(fake, training=True)
                    gen_loss = -tf.reduce_mean(fake_out)
                    disc_loss = tf.reduce_mean(fake_out) - tf.reduce_mean(real_out)
                gen_grads = gen_tape.gradient(gen_loss, generator.trainable_variables)
                disc_grads = disc_tape.gradient(disc_loss, discriminator.trainable_variables)
                g_opt.apply_gradients(zip(gen_grads, generator.trainable_variables))
                d_opt.apply_gradients(zip(disc_grads, discriminator.trainable_variables))
            """,
        ),
        # two other tapes could have recorded it: reported, not fixed
        Invalid(
            """
            import tensorflow as tf

            def step(model, x, y):
                with tf.GradientTape() as tape_a:
                    loss_a = tf.reduce_mean(model(x))
                with tf.GradientTape() as tape_b, tf.GradientTape() as tape_c:
                    loss = tf.reduce_mean(tf.square(model(x) - y))
                return tape_a.gradient(loss, model.trainable_variables)
            """,
            None,
        ),
        # Variant: the gradient asked through a helper that takes the tape.
        Invalid(
            """
import tensorflow as tf

def grads_of(tape, loss, variables):
    return tape.gradient(loss, variables)

def train_step(generator, discriminator, images, noise):
    with tf.GradientTape() as gen_tape:
        fake = generator(noise, training=True)
        gen_loss = -tf.reduce_mean(discriminator(fake, training=True))
    with tf.GradientTape() as disc_tape:
        disc_loss = tf.reduce_mean(discriminator(fake, training=True)) - tf.reduce_mean(discriminator(images, training=True))
    disc_grads = grads_of(gen_tape, disc_loss, discriminator.trainable_variables)
    gen_grads = grads_of(gen_tape, gen_loss, generator.trainable_variables)
""",
            """
import tensorflow as tf

def grads_of(tape, loss, variables):
    return tape.gradient(loss, variables)

def train_step(generator, discriminator, images, noise):
    with tf.GradientTape() as gen_tape:
        fake = generator(noise, training=True)
        gen_loss = -tf.reduce_mean(discriminator(fake, training=True))
    with tf.GradientTape() as disc_tape:
        disc_loss = tf.reduce_mean(discriminator(fake, training=True)) - tf.reduce_mean(discriminator(images, training=True))
    disc_grads = grads_of(disc_tape, disc_loss, discriminator.trainable_variables)
    gen_grads = grads_of(gen_tape, gen_loss, generator.trainable_variables)
""",
        ),
    ]

    def check(self, analysis: ModuleAnalysis) -> Iterator[Report]:
        calls = [_Pairing.of(analysis, call) for call in analysis.gradient_calls]
        pairings = [c for c in calls if c is not None]
        for pairing in pairings:
            report = self._check(analysis, pairing, [c for c in pairings if c.call.scope is pairing.call.scope and c is not pairing])
            if report is not None:
                yield report

    def _check(self, analysis: ModuleAnalysis, this: "_Pairing", others: list["_Pairing"]) -> Report | None:
        tapes = [t for t in analysis.tapes if t.scope is this.call.scope and t.name]
        if this.fits(analysis, this.tape, this.target, this.target_call):
            return self._check_names(analysis, this, others)
        # another tape recorded the loss
        other_tapes = [t for t in tapes if t.node is not this.tape.node and this.fits(analysis, t, this.target, this.target_call)]
        # or another call's loss fits these variables, and this loss fits that call's variables
        swaps = []
        for other in others:
            if this.fits(analysis, this.tape, other.target, other.call) and other.fits(analysis, other.tape, this.target, this.target_call):
                swaps.append((other, False))
            elif this.fits(analysis, other.tape, other.target, other.call) and other.fits(analysis, this.tape, this.target, this.target_call):
                swaps.append((other, True))
        if not other_tapes and not swaps:
            return None
        if len(other_tapes) + len(swaps) != 1:
            return Report(
                node=this.call.node,
                message=f"The tape `{brief(this.call.tape_name, 16)}` did not record `{brief(this.target_name, 20)}` with its sources",
                detail=(
                    f"`{analysis.code(this.call.node)}`: tape `{this.call.tape_name}` did not record `{this.target_name}` "
                    f"together with the forward pass of {_names(this.sources)}, so every gradient is None. "
                    "More than one other tape or loss could be the one meant: ask the tape that recorded the loss, "
                    "for the model that loss trains."
                ),
            )
        if other_tapes:
            tape = other_tapes[0]
            assert tape.name is not None and this.call.tape_node is not None, "named tapes; a pairing names its tape"
            # a tape that is not persistent answers one gradient call: another call of it keeps it, unless that call
            # is itself one whose tape did not record its loss (reported here, and moved to its own tape)
            asked_again = [g for g in analysis.gradient_calls if g.scope is this.call.scope and g.tape_name == tape.name
                           and g.node is not this.call.node and not _misplaced(analysis, g)]
            if not tape.persistent and asked_again:
                replacements: dict[cst.CSTNode, Replacement] | None = None
            else:
                replacements = {this.call.tape_node: cst.Name(tape.name)}
            turns = [] if tape.persistent else _loops_outside(analysis, this.call.node, tape.node)
            return Report(
                node=this.call.node,
                message=f"The gradient of `{brief(this.target_name, 20)}` is asked of `{brief(this.call.tape_name, 16)}`, not of `{brief(tape.name, 16)}`",
                detail=(
                    f"`{this.target_name}` is computed in the block of tape `{tape.name}`, but its gradient is asked of "
                    f"`{this.call.tape_name}`, which did not record it: every gradient of `{analysis.code(this.call.node)}` "
                    f"is None. Ask `{tape.name}`."
                ),
                related=[(tape.node, f"`{this.target_name}` is recorded by this tape")],
                replacements=replacements,
                fix_description=f"Ask tape `{tape.name}` for the gradient of `{this.target_name}`",
                applicability=Applicability.UNSAFE if turns else Applicability.SAFE,
                applicability_reason=(
                    f"the gradient call runs on each turn of a loop that `{tape.name}`'s block is outside of, and a tape "
                    "that is not persistent answers one gradient call" if turns else ""),
            )
        other, swap_tapes = swaps[0]
        return self._swap_report(analysis, this, other, swap_tapes, broken=True)

    def _check_names(self, analysis: ModuleAnalysis, this: "_Pairing", others: list["_Pairing"]) -> Report | None:
        """Gradients flow, but the names say the two losses changed places (a GAN whose losses share outputs)."""
        if len(others) != 1 or len(this.sources) != 1 or len(others[0].sources) != 1:
            return None
        other = others[0]
        mine, theirs = _stem(this.sources[0].name), _stem(other.sources[0].name)
        my_loss, their_loss = _stem(this.target_name), _stem(other.target_name)
        if not all((mine, theirs, my_loss, their_loss)) or _same(mine, theirs) or _same(my_loss, their_loss):
            return None
        if not (_same(my_loss, theirs) and _same(their_loss, mine)):
            return None
        if not (this.fits(analysis, this.tape, other.target, other.call) and other.fits(analysis, other.tape, this.target, this.target_call)):
            return None
        return self._swap_report(analysis, this, other, False, broken=False)

    def _swap_report(self, analysis, this: "_Pairing", other: "_Pairing", swap_tapes: bool, broken: bool) -> Report:
        replacements: dict = {this.target: other.target.deep_clone(), other.target: this.target.deep_clone()}
        if swap_tapes:
            replacements[this.call.tape_node] = cst.Name(other.call.tape_name)
            replacements[other.call.tape_node] = cst.Name(this.call.tape_name)
        sources = tapeflow.sources_label(this.sources)
        message = f"The losses `{brief(this.target_name, 20)}` and `{brief(other.target_name, 20)}` look swapped"
        if broken:
            detail = (
                f"`{analysis.code(this.call.node)}`: `{this.target_name}` does not depend on the forward pass of "
                f"{_names(this.sources)} that the tape recorded, so their gradients are None; `{other.target_name}`, whose gradient is asked in "
                f"`{analysis.code(other.call.node)}`, does: the two losses look swapped."
            )
        else:
            detail = (
                f"`{analysis.code(this.call.node)}` trains {sources} on `{this.target_name}`, while "
                f"`{analysis.code(other.call.node)}` trains {tapeflow.sources_label(other.sources)} on `{other.target_name}`: "
                "the two losses look swapped."
            )
        return Report(
            node=this.call.node,
            message=message,
            detail=detail,
            related=[(other.call.node, "the gradient call it is swapped with")],
            replacements=replacements,
            fix_description=f"Swap the losses `{this.target_name}` and `{other.target_name}`",
            applicability=Applicability.UNSAFE,
            severity=None if broken else Severity.WARNING,
        )


@dataclass
class _Pairing:
    """One ``tape.gradient(target, sources)`` call with the facts needed to judge it."""

    call: GradientCall
    tape: TapeBlock
    target: cst.Name
    sources: list[Source]

    @property
    def target_name(self) -> str:
        return self.target.value

    @property
    def target_call(self) -> GradientCall:
        return self.call

    @classmethod
    def of(cls, analysis: ModuleAnalysis, call: GradientCall) -> "_Pairing | None":
        if call.tape is None or not isinstance(call.target, cst.Name) or call.tape_node is None:
            return None
        sources = resolve_sources(analysis, call.sources, call.scope)
        if not sources:
            return None
        return cls(call, call.tape, call.target, sources)

    def fits(self, analysis: ModuleAnalysis, tape: TapeBlock, target: cst.Name, at: GradientCall) -> bool:
        """Whether ``tape`` recorded ``target`` and, on the way to it, these sources' forward pass."""
        statement = analysis.statement_index(at.node)
        if statement is None:
            return False
        definitions = analysis.reaching_definitions(target.value, statement, at.scope)
        if len(definitions) != 1 or not tapeflow.recorded_by(analysis, definitions[0], tape):
            return False
        own = analysis.statement_index(self.call.node)
        if own is None or analysis.precedes(self.call.node, tape.node):
            return False
        flow = [s for s in analysis.backward_slice(target, at.scope) if tapeflow.recorded_by(analysis, s, tape)]
        reached: set[Source] = set()
        for s in flow:
            reached |= tapeflow.references(analysis, s, self.sources) | tapeflow.passed_as_argument(s, self.sources)
        return reached == set(self.sources)


_ROLES = {
    "gen": "generator", "g": "generator", "generator": "generator",
    "disc": "discriminator", "d": "discriminator", "discriminator": "discriminator", "critic": "critic",
    "actor": "actor", "policy": "actor", "enc": "encoder", "encoder": "encoder", "dec": "decoder", "decoder": "decoder",
}


def _stem(name: str) -> str | None:
    """The role a name plays: ``gen_loss``, ``self.generator``, ``g_loss`` -> "generator"."""
    last = name.split(".")[-1].lower()
    words = [w for w in re.split(r"[_\d]+", last) if w]
    for word in words:
        if word in _ROLES:
            return _ROLES[word]
    return None


def _misplaced(analysis: ModuleAnalysis, call: GradientCall) -> bool:
    """Whether ``call`` asks its tape for a loss that tape did not record with its sources."""
    pairing = _Pairing.of(analysis, call)
    return pairing is not None and not pairing.fits(analysis, pairing.tape, pairing.target, pairing.target_call)


def _loops_outside(analysis: ModuleAnalysis, call: cst.CSTNode, block: cst.CSTNode) -> list[cst.CSTNode]:
    """The loops around ``call`` that do not also hold the tape's ``block``: each of their turns asks again."""
    around_block = set(map(id, analysis.ancestors(block)))
    return [a for a in analysis.ancestors(call) if isinstance(a, (cst.For, cst.While)) and id(a) not in around_block]


def _names(sources) -> str:
    return ", ".join(f"`{o.name}`" for o in sources)


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and a == b
