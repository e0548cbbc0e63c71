"""The widgets a tab knows from the deltas it received, and the widget states it sends back.

The value types are the server's (``register_widget(value_type=...)`` in streamlit/elements/widgets/*.py):
sliders send double_array_value, a select_slider and a segmented control string_array_value of their
formatted options, selectbox and radio string_value, checkbox bool_value, number_input double_value. A
widget's value comes from its proto when the proto says ``set_value``, else it is the one the tab holds,
else the proto's default (the frontend's widget manager)."""

from __future__ import annotations

from dataclasses import dataclass

from streamlit.proto.WidgetStates_pb2 import WidgetState

WIDGET_KINDS = frozenset(("slider", "checkbox", "selectbox", "radio", "number_input", "text_input", "multiselect",
                          "button", "download_button", "file_uploader", "button_group"))


def user_key(element_id: str) -> str | None:
    """The key a page gave a widget, from its element id "$$ID-<hash>-<key>" (streamlit.runtime.state.common)."""
    key = element_id.split("-", 2)[-1] if element_id.startswith("$$ID") else None
    return None if key in (None, "None") else key


@dataclass
class Widget:
    """A widget on the page, as its last delta described it."""

    id: str
    kind: str  # "slider", "select_slider", "selectbox", ... (the Element field; select_slider told apart)
    key: str | None
    fragment_id: str  # "" outside any fragment
    proto: object  # the widget's protobuf (Slider, Selectbox, ...)

    @property
    def range(self) -> tuple[float, float, float]:
        """(min, max, step) of a slider; the indices of a select_slider's or a segmented control's options."""
        p = self.proto
        return (p.min, p.max, p.step) if self.kind == "slider" else (0, len(self.options) - 1, 1)

    @property
    def options(self) -> list[str]:
        """A select_slider's or a segmented control's options (formatted, as the widget state carries them)."""
        if self.kind == "button_group":
            return [o.content for o in self.proto.options]
        return list(self.proto.options)


def proto_value(w: Widget) -> WidgetState | None:
    """The widget state the frontend holds for a freshly drawn widget: its proto's value if the proto
    sets one, else its default; None for widgets that hold no value (buttons) or that this does not model."""
    p, s = w.proto, WidgetState(id=w.id)
    if w.kind == "slider":
        s.double_array_value.data[:] = list(p.value if p.set_value else p.default)
    elif w.kind == "select_slider":
        s.string_array_value.data[:] = list(p.raw_value) if p.set_value else [p.options[int(i)] for i in p.default]
    elif w.kind == "checkbox":
        s.bool_value = p.value if p.set_value else p.default
    elif w.kind in ("selectbox", "radio"):
        if p.set_value:
            if not p.HasField("raw_value"):
                return None
            s.string_value = p.raw_value
        elif p.HasField("default") and 0 <= p.default < len(p.options):
            s.string_value = p.options[p.default]
        else:
            return None
    elif w.kind == "number_input":
        s.double_value = p.value if p.set_value else p.default
    elif w.kind == "text_input":
        s.string_value = p.value if p.set_value else p.default
    elif w.kind == "button_group":  # st.segmented_control / st.pills: the formatted options chosen
        s.string_array_value.data[:] = list(p.raw_values) if p.set_value else [w.options[i] for i in p.default]
    elif w.kind == "multiselect":
        s.string_array_value.data[:] = list(p.raw_values) if p.set_value else [p.options[i] for i in p.default]
    else:
        return None
    return s


def slider_state(w: Widget, value: float | str) -> WidgetState:
    """The widget state of slider ``w`` at ``value`` (a number; a select_slider's or a segmented control's
    option, or its index)."""
    s = WidgetState(id=w.id)
    if w.kind in ("select_slider", "button_group"):
        s.string_array_value.data[:] = [value if isinstance(value, str) else w.options[int(value)]]
    else:
        s.double_array_value.data[:] = [float(value)]
    return s


def slider_value(state: WidgetState | None, w: Widget) -> float:
    """The slider's current position (a select_slider's index)."""
    if state is None:
        state = proto_value(w)
    if w.kind in ("select_slider", "button_group"):
        data = state.string_array_value.data if state is not None else []
        return float(w.options.index(data[0])) if data and data[0] in w.options else 0.0
    return float(state.double_array_value.data[0])
