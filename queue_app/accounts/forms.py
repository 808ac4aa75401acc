"""The staff sign-in form."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SubmitField
from wtforms.validators import DataRequired

from queue_app.web.input_rules import StrictText


class LoginForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), StrictText(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), StrictText(max=1024)])
    submit = SubmitField(_l("Sign in"))
