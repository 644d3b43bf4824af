import bleach
import markdown as md
from django import template
from django.utils.safestring import mark_safe

register = template.Library()

ALLOWED_TAGS = {"p", "br", "strong", "em", "ul", "ol", "li", "code", "pre", "blockquote", "h1", "h2", "h3", "h4", "a", "hr", "table", "thead", "tbody", "tr", "th", "td"}


@register.filter
def markdown(text: str) -> str:
    """Guidelines are Markdown written by project admins; sanitise the HTML all the same."""
    html = md.markdown(text or "", extensions=["tables"])
    return mark_safe(bleach.clean(html, tags=ALLOWED_TAGS, attributes={"a": ["href", "title"]}, protocols={"http", "https", "mailto"}, strip=True))


@register.filter
def percent(part, whole) -> int:
    return round(100 * (part or 0) / whole) if whole else 0


@register.filter
def complement(value):
    """1 - value: live accuracy's interval from the disagreement rate's."""
    return None if value is None else 1 - value


@register.inclusion_tag("frontend/chart.html")
def svg_chart(chart: dict) -> dict:
    """An inline SVG line chart from `frontend.charts.line_chart`."""
    return {"chart": chart}


@register.inclusion_tag("frontend/bar_chart.html")
def svg_bar_chart(chart: dict) -> dict:
    """An inline SVG bar chart from `frontend.charts.bar_chart`."""
    return {"chart": chart}


@register.filter
def share(value):
    """A share (0..1) as a whole percentage, or an em dash when there is none."""
    return "—" if value is None else f"{round(100 * value)}%"


@register.filter
def rate_with_interval(count):
    """A counted rate ({"agree", "n", "rate", "interval"}, labeller.suggestion_effect) as
    "73% (22 of 30; 55–86%)": the share, what it counts, and its 95% Wilson interval."""
    if not count or not count["n"]:
        return "—"
    low, high = count["interval"]
    return f"{share(count['rate'])} ({count['agree']} of {count['n']}; {round(100 * low)}–{round(100 * high)}%)"


@register.filter
def signed_interval(pull):
    """A difference of two rates with its interval, in points: "+12 (+3…+21) points"."""
    if not pull:
        return "—"
    low, high = pull["interval"]
    points = lambda x: f"{100 * x:+.0f}".replace("-", "\u2212")  # noqa: E731
    return f"{points(pull['difference'])} ({points(low)}…{points(high)}) points"
