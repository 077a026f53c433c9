"""One repository per aggregate; each method is one short transaction."""

from storage.repositories.accounts import Accounts
from storage.repositories.activity import Activity
from storage.repositories.alerts import Alerts
from storage.repositories.audit import Audit
from storage.repositories.cancels import OrderCancels
from storage.repositories.confirmations import Confirmations
from storage.repositories.conversations import Conversations
from storage.repositories.fill_sessions import FillSessions
from storage.repositories.fills import Fills
from storage.repositories.keysets import KeySets
from storage.repositories.leases import Instances, Leases
from storage.repositories.limits import DayLimits
from storage.repositories.options import Options
from storage.repositories.orders import Orders
from storage.repositories.outbox import Outbox
from storage.repositories.ratebuckets import RateBuckets
from storage.repositories.reserved import ReservedOrders
from storage.repositories.tokens import SqlTokenStore
from storage.repositories.totp import Totp
from storage.repositories.twofactor import TwoFactor
from storage.repositories.users import Users
from storage.repositories.websessions import WebSessions

__all__ = [
    "Accounts",
    "Activity",
    "Alerts",
    "Audit",
    "Confirmations",
    "Conversations",
    "FillSessions",
    "DayLimits",
    "Fills",
    "Instances",
    "KeySets",
    "Leases",
    "Options",
    "OrderCancels",
    "Orders",
    "Outbox",
    "RateBuckets",
    "ReservedOrders",
    "SqlTokenStore",
    "Totp",
    "TwoFactor",
    "Users",
    "WebSessions",
]
