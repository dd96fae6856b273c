"""Settings groups; each module declares one group's fields."""

from .account import AccountSettings
from .averaging import AveragingSettings
from .entry import EntrySettings
from .exchange import ExchangeGlobalSettings
from .exits import ExitsSettings
from .fees import FeesSettings
from .hedge import HedgeGlobalSettings
from .macro import MacroSettings
from .alerts import AlertsGlobalSettings
from .monitoring import MonitoringGlobalSettings
from .monitoring import MonitoringSettings
from .profiles import ProfilesGlobalSettings
from .protections import ProtectionsGlobalSettings
from .reference import ReferenceGlobalSettings
from .reference import ReferenceSettings
from .runtime import RuntimeGlobalSettings
from .runtime import RuntimeSettings
from .secrets import SecretsGlobalSettings
from .signal import SignalSettings
from .sizing import SizingSettings
from .volatility import VolatilitySettings

SIDE_GROUPS = (SignalSettings, SizingSettings, EntrySettings, FeesSettings, ExitsSettings, AveragingSettings, AccountSettings, VolatilitySettings, MacroSettings, MonitoringSettings, ReferenceSettings, RuntimeSettings,)
GLOBAL_GROUPS = (HedgeGlobalSettings, ProtectionsGlobalSettings, ExchangeGlobalSettings, MonitoringGlobalSettings, AlertsGlobalSettings, ReferenceGlobalSettings, RuntimeGlobalSettings, SecretsGlobalSettings, ProfilesGlobalSettings,)
