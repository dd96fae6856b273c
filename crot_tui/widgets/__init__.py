"""One widget per dashboard pane, plus the status bar and the shared table/pane bases."""

from .equity import EquityPane
from .eventlog import EventLogPane
from .positions import PositionsPane
from .premium import PremiumPane
from .regime import RegimePane
from .rejections import RejectionsPane
from .statusbar import StatusBar
from .stops import StopsPane

__all__ = ["EquityPane", "EventLogPane", "PositionsPane", "PremiumPane", "RegimePane", "RejectionsPane",
           "StatusBar", "StopsPane"]
